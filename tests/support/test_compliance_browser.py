"""The compliance console in Chromium, end to end: a member's change made through the chat and the real worker,
then a compliance officer who gives a reason, filters the trail, opens the whole chain of the executed
proposal, exports the view as FHIR and finds the export itself in the trail."""

import json
import re

import pytest
from fhir.resources.R4B.bundle import Bundle
from playwright.sync_api import expect

from tests.browser import browser, page  # noqa: F401
from tests.factories import UserFactory
from tests.support.test_chat_browser import (  # noqa: F401
    DONE,
    REQUEST,
    TURN_TIMEOUT_MS,
    ask,
    harbour,
    log_in,
    worker,
)

pytestmark = pytest.mark.slow

REASON = "Quarterly access review"


def test_an_officer_follows_an_agent_action_and_exports_it(page, asgi_server, harbour, worker):  # noqa: F811
    log_in(page, asgi_server, "anna")
    page.get_by_role("link", name="Chat with Alfred").click()
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    ask(page, REQUEST)
    page.locator(".chat-proposal").get_by_role("button", name="Confirm").click(timeout=TURN_TIMEOUT_MS)
    expect(page.locator(".chat-proposal .proposal-result")).to_have_text(DONE, timeout=TURN_TIMEOUT_MS)

    UserFactory(username="camille", first_name="Camille", last_name="Roux", platform_role="compliance")
    officer = page.context.browser.new_context().new_page()
    log_in(officer, asgi_server, "camille")
    officer.get_by_role("link", name="Audit trail").first.click()
    officer.get_by_label("Why do you consult the audit trail?").fill(REASON)
    officer.get_by_role("button", name="Continue").click()
    expect(officer.get_by_role("heading", name="Audit trail")).to_be_visible()
    expect(officer.locator("q")).to_have_text(REASON)  # the reason recorded with each page read

    officer.get_by_label("Object").fill("support.actionproposal")
    officer.get_by_role("button", name="Filter").click()
    rows = officer.locator("#audit-trail tbody tr")
    expect(rows.first).to_contain_text("executed")
    expect(rows.filter(has_text="propose").first).to_contain_text("Anna Novak")

    rows.first.get_by_role("link", name="Whole chain").click()
    expect(officer.get_by_role("heading", name=re.compile(r"Chain of agent action #\d+"))).to_be_visible()
    expect(officer.locator("#chain-message")).to_contain_text(REQUEST)
    expect(officer.locator("#chain-runs")).to_contain_text("calendar_access")
    expect(officer.locator("#chain-proposal")).to_contain_text("confirm")
    api = officer.locator("#chain-api")
    expect(api).to_contain_text("support.calendaraccess:")
    expect(api).to_contain_text("Anna Novak")
    expect(api.locator("code").nth(1)).to_have_text(re.compile(r"^[0-9a-f-]{16,}$"))  # the service token's jti
    expect(officer.locator("#chain-records tbody tr").first).to_be_visible()

    officer.get_by_role("link", name="Back to the audit trail").click()
    officer.get_by_label("Format").select_option("fhir")
    officer.get_by_role("button", name="Export this view").click()
    expect(officer.get_by_text(re.compile(r"Export #\d+ is on its way"))).to_be_visible()
    download_link = officer.locator("#audit-exports tbody tr").first.get_by_role("link", name="Download")
    expect(download_link).to_be_visible(timeout=TURN_TIMEOUT_MS)  # the page re-reads itself while it runs
    with officer.expect_download() as download:
        download_link.click()
    bundle = Bundle.model_validate_json(download.value.path().read_text(encoding="utf-8"))
    subtypes = {event.resource.subtype[0].code for event in bundle.entry}
    assert {"propose", "confirm", "executed"} <= subtypes
    assert all(json.loads(event.resource.model_dump_json())["resourceType"] == "AuditEvent" for event in bundle.entry)

    officer.goto(f"{asgi_server}/compliance/?kind=read")
    reads = officer.locator("#audit-trail tbody")
    expect(reads).to_contain_text(re.compile(r"export \d+ \(fhir\)"))
    expect(reads).to_contain_text(re.compile(r"download of export \d+"))
    expect(reads).to_contain_text("Camille Roux")
