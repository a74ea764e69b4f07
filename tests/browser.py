"""Playwright fixtures for browser tests, driving the system Chromium (never `playwright install`).

Import them explicitly in a test module:

    from tests.browser import browser, page  # noqa: F401

`browser` is one headless Chromium for the whole session; `page` gives each test a fresh context
(own cookies and storage). When a test fails, the page's screenshot is kept under
test-results/<test name>.png.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root in containers
    "--disable-gpu",
    "--disable-background-networking",  # no calls home: the machine reaches few hosts
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",  # a small /dev/shm in containers crashes tabs
]
DEFAULT_TIMEOUT_MS = 10_000  # a local page that takes longer is a failure, not something to wait for
UNSAFE_FILENAME = re.compile(r"[^\w.-]")
SCREENSHOTS_DIR = Path(__file__).resolve().parent.parent / "test-results"

# Django's live_server runs in a thread of this process; Playwright's sync API runs an event loop
# in this thread, and Django refuses ORM calls from a thread with a running loop without this.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


class _SharedChromium:
    """One Playwright and one Chromium per test process, however many modules import `browser`.

    Each module that imports a fixture registers its own copy of it, so a session-scoped fixture
    runs once per importing module; a second `sync_playwright()` would then start inside the
    first one's event loop and fail. The copies share this instance and the last one closes it.
    """

    def __init__(self):
        self.users = 0
        self.playwright = None
        self.browser = None

    def acquire(self):
        if self.users == 0:
            from playwright.sync_api import sync_playwright

            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        self.users += 1
        return self.browser

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.browser.close()
            self.playwright.stop()
            self.browser = self.playwright = None


_chromium = _SharedChromium()


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.skip(f"{CHROMIUM} is missing: run `make test-deps`")
    chromium = _chromium.acquire()
    try:
        yield chromium
    finally:
        _chromium.release()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(locale="en-GB")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    tab = context.new_page()
    failures_before = request.session.testsfailed
    yield tab
    # The session counts a failed call before teardown runs: no hook (they live in conftest.py) needed.
    if request.session.testsfailed > failures_before:
        SCREENSHOTS_DIR.mkdir(exist_ok=True)
        name = UNSAFE_FILENAME.sub("_", request.node.name)
        tab.screenshot(path=str(SCREENSHOTS_DIR / f"{name}.png"))
    context.close()


def log_in(page, base_url: str, username: str, password: str = "pw-for-tests") -> None:  # noqa: F811
    """Log in through the login form (tests.factories.UserFactory's password by default)."""
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()
    page.wait_for_url(f"{base_url}/")
