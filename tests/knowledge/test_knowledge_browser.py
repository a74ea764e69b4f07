"""Knowledge end to end in Chromium: a practitioner asks a how-to question in the chat and sees a cited
answer linking to the article; a support staff member edits and publishes the article in the console; the
practitioner's next answer uses the new text. Real daphne, real Celery worker (offline engine, local
embeddings), real pgvector + full-text retrieval."""

import re

import pytest
from playwright.sync_api import expect

from knowledge.indexing import reindex_job_run
from knowledge.services import ArticleContent, article_create, indexing_collected
from tests.browser import browser, log_in, page  # noqa: F401
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory, article_published
from tests.support.chat_client import wait_until_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TURN_TIMEOUT_MS = 60_000  # the first turn of a worker loads the offline engine
INDEX_TIMEOUT_MS = 120_000
QUESTION = "How do I turn on the waiting list?"
OLD_STEP = "Turn the waiting list on in Settings > Waiting list."
NEW_STEP = "Turn the waiting list on in Preferences > Patient queue, then choose the appointment types."


@pytest.fixture
def people(transactional_db, asgi_server, celery_worker_process):
    org = OrganizationFactory(name="Harbour Dental Practice")
    anna = UserFactory(username="anna", first_name="Anna", last_name="Novak")
    MembershipFactory(user=anna, organization=org, role="practitioner")
    sam = UserFactory(username="sam", first_name="Sam", last_name="Support", platform_role="support")
    body = f"Patients can join a waiting list when no slot suits them. {OLD_STEP}\n"
    with indexing_collected() as jobs:
        article_create(
            actor=sam,
            slug="waiting-list",
            content=ArticleContent(title="Use the waiting list", language="en", body=body),
            publish=True,
        )
    for job in jobs:
        reindex_job_run(job)
    yield {"anna": anna, "sam": sam}
    wait_until_idle(timeout=30)


def ask(page, text):  # noqa: F811
    page.get_by_label("Your message to Alfred").fill(text)
    page.get_by_role("button", name="Send", exact=True).click()


def test_a_cited_answer_then_the_new_text_once_staff_publish_it(browser, page, asgi_server, people):  # noqa: F811
    log_in(page, asgi_server, "anna")
    page.goto(f"{asgi_server}/chat/")
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    ask(page, QUESTION)

    answer = page.get_by_role("log").locator(".msg-assistant").last
    expect(answer.locator(".msg-text")).to_have_text(
        "Turn the waiting list on in Settings > Waiting list [1].", timeout=TURN_TIMEOUT_MS
    )
    source = answer.locator(".msg-sources").get_by_role("link", name="[1] Use the waiting list")
    expect(source).to_have_attribute("href", "/kb/waiting-list/")

    page.goto(f"{asgi_server}/kb/waiting-list/")  # the citation's page: the published article
    expect(page.get_by_role("heading", name="Use the waiting list", level=1)).to_be_visible()
    expect(page.locator(".article-body")).to_contain_text(OLD_STEP)

    staff = browser.new_context().new_page()
    try:
        log_in(staff, asgi_server, "sam")
        staff.goto(f"{asgi_server}/console/knowledge/")
        staff.get_by_role("row", name=re.compile("Use the waiting list")).get_by_role(
            "link", name="Use the waiting list"
        ).click()
        staff.get_by_label("Text (Markdown)").fill(
            f"Patients can join a waiting list when no slot suits them. {NEW_STEP}"
        )
        staff.get_by_label("What changed").fill("new menu")
        staff.get_by_role("button", name="Publish").click()
        expect(staff.locator("[data-index-state]")).to_have_text("Indexed", timeout=INDEX_TIMEOUT_MS)
    finally:
        staff.context.close()

    page.goto(f"{asgi_server}/chat/")
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    ask(page, QUESTION)
    latest = page.get_by_role("log").locator(".msg-assistant").last
    expect(latest.locator(".msg-text")).to_contain_text("Preferences > Patient queue", timeout=TURN_TIMEOUT_MS)
    expect(latest.locator(".msg-text")).not_to_contain_text("Settings > Waiting list")
    expect(latest.locator(".msg-sources").get_by_role("link")).to_have_text(["[1] Use the waiting list"])


def test_article_html_is_shown_as_text_in_the_chat_and_the_article_page(page, asgi_server, people):  # noqa: F811
    body = (
        'To print the day\'s schedule, open Agenda > Print <img src=x onerror="window.hacked = 1"> and choose '
        "portrait.\n\n<script>window.hacked = 2</script>\n"
    )
    article_published("printing", "Print the schedule", body)
    log_in(page, asgi_server, "anna")
    page.goto(f"{asgi_server}/chat/")
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    ask(page, "How do I print the day's schedule?")

    answer = page.get_by_role("log").locator(".msg-assistant").last
    shown = answer.locator(".msg-text")
    expect(shown).to_contain_text('<img src=x onerror="window.hacked = 1">', timeout=TURN_TIMEOUT_MS)
    assert page.locator("#chat-log img").count() == 0
    assert page.evaluate("window.hacked") is None

    page.goto(f"{asgi_server}/kb/printing/")
    expect(page.locator(".article-body")).to_contain_text("<script>window.hacked = 2</script>")
    assert page.locator(".article-body img, .article-body script").count() == 0
    assert page.evaluate("window.hacked") is None
