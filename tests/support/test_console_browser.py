"""The support console and the member's chat, side by side in Chromium.

End to end: each person has their own browser context (own cookies, own session) against a real daphne process
(pages and sockets) and a real Celery worker running the chat graph with the offline engine. Anna (owner of
"Dr Novak surgery") talks to Alfred; Sophie Durand, from support, works in the console (/console/): she sees a
hand-off arrive live, takes the conversation over, answers, hands it back; she approves a change the policy
keeps for staff; two members of staff race for one conversation; a logout in one tab ends the chat in another.

The member's side is read through its text only (#chat-log and visible sentences), never its CSS classes: that
markup is still moving. Who may open the console at all is tested without a browser in test_console.py.
"""

import contextlib
import re
import time

import pytest
from auditlog.models import LogEntry
from playwright.sync_api import expect

from support.models import ActionProposal, CalendarAccess, Conversation, Message
from support.services.handoff import conversation_hand_off
from tests.browser import DEFAULT_TIMEOUT_MS, SCREENSHOTS_DIR, UNSAFE_FILENAME, browser, log_in  # noqa: F401
from tests.factories import UserFactory
from tests.support.chat_client import wait_until_idle
from tests.support.harbour import harbour as harbour_practice

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TURN_TIMEOUT_MS = 60_000  # the first turn of a worker loads the offline engine
HANDOFF_REQUEST = "I want to talk to a person"  # the offline engine's rules: "talk to a person" -> handoff
HANDOFF_REPLY = "I've passed this conversation to the support team. Someone will answer you here."
BOOK_REQUEST = "Give Tomas Reyes booking access to my surgery calendar"
BOOK_SUMMARY = "Tomas Reyes will be able to book appointments in Dr Novak surgery"
MANAGE_REQUEST = "Give Tomas Reyes manage access to my surgery calendar"
MANAGE_SUMMARY = "Tomas Reyes will be able to manage Dr Novak surgery, including who has access to it"
MANAGE_DONE = "Done: Tomas Reyes can now manage Dr Novak surgery (including who has access to it)."
TAKEN = "You have taken this conversation over: Alfred no longer answers in it."
ENDED = "Your session has ended. Log in again to continue."
TO_ALFRED = "Your message to Alfred"
ANY_COMPOSER = re.compile(r"^Your message to ")  # to Alfred, or to support while a person has the conversation


class People:
    """One browser context per person (locale en-GB, the suite's default timeout), all closed after the test."""

    def __init__(self, browser):  # noqa: F811
        self.browser = browser
        self.contexts: list[tuple[str, object]] = []

    def new(self, name: str):
        """A new person's first tab (more tabs of the same session: `tab.context.new_page()`)."""
        context = self.browser.new_context(locale="en-GB")
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self.contexts.append((name, context))
        return context.new_page()

    def screenshots(self, test_name: str) -> None:
        SCREENSHOTS_DIR.mkdir(exist_ok=True)
        prefix = UNSAFE_FILENAME.sub("_", test_name)
        for name, context in self.contexts:
            for number, tab in enumerate(context.pages):
                with contextlib.suppress(Exception):  # a crashed tab has no screenshot; the others still do
                    tab.screenshot(path=str(SCREENSHOTS_DIR / f"{prefix}-{name}-{number}.png"))

    def close(self) -> None:
        for _name, context in self.contexts:
            context.close()


@pytest.fixture
def people(browser, request):  # noqa: F811
    crowd = People(browser)
    failures_before = request.session.testsfailed
    yield crowd
    # The session counts a failed call before teardown runs (as tests.browser's `page` does).
    if request.session.testsfailed > failures_before:
        crowd.screenshots(request.node.name)
    crowd.close()


@pytest.fixture
def harbour(transactional_db, asgi_server):
    """Harbour Dental Practice, committed: the server and the worker are other processes."""
    return harbour_practice()


@pytest.fixture
def staff(harbour):
    return UserFactory(username="sophie", first_name="Sophie", last_name="Durand", platform_role="support")


@pytest.fixture
def worker(harbour, celery_worker_process):
    yield celery_worker_process
    wait_until_idle(timeout=30)  # let a turn finish before the tables are emptied under it


def open_chat(tab, url: str) -> None:
    tab.goto(url)
    expect(tab.locator("#chat-connection-text")).to_have_text("Connected")


def ask(tab, text: str, *, label=TO_ALFRED) -> None:
    tab.get_by_label(label).fill(text)
    tab.get_by_role("button", name="Send", exact=True).click()


def open_console(tab, url: str) -> None:
    tab.goto(url)
    expect(tab.locator("#console-live-text")).to_have_text("Live")  # watching: a change shows without a reload


def mark_page(tab) -> None:
    """A flag in the page's window: still there later means the page was never reloaded meanwhile."""
    tab.evaluate("window.notReloaded = true")


def not_reloaded(tab) -> bool:
    return tab.evaluate("window.notReloaded === true")


def wait_for(predicate, timeout_ms: int = TURN_TIMEOUT_MS) -> None:
    deadline = time.monotonic() + timeout_ms / 1000
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def decisions_of(obj, decision: str) -> list:
    """The actors of the audit log entries of `obj` that record `decision`."""
    entries = LogEntry.objects.get_for_object(obj).order_by("timestamp", "pk")
    return [entry.actor for entry in entries if (entry.additional_data or {}).get("decision") == decision]


# --- Hand-off, take-over, live replies, hand-back -------------------------------------------------------------


def test_a_person_takes_over_answers_live_and_hands_back_to_alfred(people, asgi_server, harbour, staff, worker):
    console = people.new("sophie")
    log_in(console, asgi_server, "sophie")
    open_console(console, f"{asgi_server}/console/?state=handed_off")
    inbox = console.locator("#console-inbox-list")
    expect(inbox).to_contain_text("Nobody is waiting for a person.")
    mark_page(console)

    member = people.new("anna")
    log_in(member, asgi_server, "anna")
    open_chat(member, f"{asgi_server}/chat/")
    chat_log = member.locator("#chat-log")
    ask(member, HANDOFF_REQUEST)
    expect(chat_log).to_contain_text(HANDOFF_REPLY, timeout=TURN_TIMEOUT_MS)

    # The conversation appears in Sophie's open inbox, without a reload.
    waiting = inbox.get_by_role("link", name="Anna Novak")
    expect(waiting).to_be_visible(timeout=TURN_TIMEOUT_MS)
    expect(inbox).to_contain_text(HANDOFF_REQUEST)
    assert not_reloaded(console)
    conversation = Conversation.objects.get(user=harbour.anna)
    assert conversation.status == Conversation.Status.HANDED_OFF
    epoch = conversation.graph_epoch

    waiting.click()
    expect(console).to_have_url(f"{asgi_server}/console/conversations/{conversation.pk}/")
    expect(console.locator("#console-live-text")).to_have_text("Live")
    console.get_by_role("button", name="Take over").click()
    expect(console.get_by_text(TAKEN)).to_be_visible()
    expect(console.locator("#console-actions")).to_contain_text("You have this conversation")
    expect(console.locator("#console-live-text")).to_have_text("Live")
    mark_page(console)

    expect(chat_log).to_contain_text("Sophie Durand from the support team joined the conversation.")

    # The member writes: Sophie reads it live, Alfred keeps quiet.
    replies_before = Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT).count()
    ask(member, "are you there?", label=ANY_COMPOSER)
    transcript = console.locator("#console-transcript")
    expect(transcript).to_contain_text("are you there?")
    assert not_reloaded(console)
    time.sleep(1)  # time enough for a wrongly queued turn to start
    wait_until_idle(timeout=30)
    assert Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT).count() == replies_before
    held = Message.objects.get(conversation=conversation, text="are you there?")
    assert held.status == Message.Status.COMPLETE  # kept for the person, never queued for Alfred

    # Sophie answers: the member reads it live, with her name, and after a reload.
    mark_page(member)
    reply = "Yes, Sophie here. What can I do for you?"
    box = console.get_by_label("Your reply to Anna Novak")
    box.fill(reply)
    console.get_by_role("button", name="Send the reply").click()
    expect(box).to_have_value("")
    expect(transcript).to_contain_text(reply)
    expect(chat_log).to_contain_text(reply)
    expect(chat_log).to_contain_text("Sophie Durand")
    assert not_reloaded(member)
    stored = Message.objects.get(conversation=conversation, role=Message.Role.STAFF)
    assert (stored.text, stored.author_id) == (reply, staff.pk)
    member.reload()
    expect(chat_log).to_contain_text(reply)
    expect(chat_log).to_contain_text("Sophie Durand from the support team joined the conversation.")
    expect(member.locator("#chat-connection-text")).to_have_text("Connected")

    # Back to Alfred, which answers the next message from a clean state.
    console.get_by_role("button", name="Hand back to Alfred").click()
    expect(console.get_by_text("Handed back to Alfred: it answers the member's next message.")).to_be_visible()
    expect(chat_log).to_contain_text("Sophie Durand left the conversation. Alfred answers again.")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee_id) == (Conversation.Status.OPEN, None)
    assert conversation.graph_epoch == epoch + 1

    ask(member, BOOK_REQUEST)
    expect(chat_log).to_contain_text(f"Here is the change I can make: {BOOK_SUMMARY}.", timeout=TURN_TIMEOUT_MS)
    expect(member.get_by_role("button", name="Confirm")).to_be_enabled()
    proposal = ActionProposal.objects.get(conversation=conversation)
    assert (proposal.status, proposal.summary) == (ActionProposal.Status.PROPOSED, BOOK_SUMMARY)
    assert decisions_of(conversation, "take_over") == [staff]
    assert decisions_of(conversation, "hand_back") == [staff]


# --- Staff approval ------------------------------------------------------------------------------------------


def test_support_approves_a_manage_grant_and_the_member_sees_it_made(people, asgi_server, harbour, staff, worker):
    member = people.new("anna")
    log_in(member, asgi_server, "anna")
    open_chat(member, f"{asgi_server}/chat/")
    chat_log = member.locator("#chat-log")
    # Every text the log showed, so that a passing one ("Approved by …", replaced by the result) is seen.
    member.evaluate(
        """() => {
          const log = document.getElementById("chat-log");
          window.logTexts = [];
          new MutationObserver(() => window.logTexts.push(log.textContent)).observe(
            log, { subtree: true, childList: true, characterData: true }
          );
        }"""
    )

    ask(member, MANAGE_REQUEST)
    expect(chat_log).to_contain_text(f"Here is the change I can make: {MANAGE_SUMMARY}.", timeout=TURN_TIMEOUT_MS)
    member.get_by_role("button", name="Confirm").click()

    expect(chat_log).to_contain_text("Confirmed. The support team must approve this change before it is made.")
    expect(member.get_by_text("Waiting for approval by the support team.")).to_be_visible()
    wait_until_idle(timeout=30)
    proposal = ActionProposal.objects.get(conversation__user=harbour.anna)
    assert proposal.status == ActionProposal.Status.AWAITING_APPROVAL
    assert proposal.approval_reasons == ["manage_grant"]
    assert not CalendarAccess.objects.filter(calendar=harbour.novak_surgery, user=harbour.tomas).exists()

    console = people.new("sophie")
    log_in(console, asgi_server, "sophie")
    open_console(console, f"{asgi_server}/console/approvals/")
    card = console.locator(".console-proposal", has_text=MANAGE_SUMMARY)
    expect(card.get_by_role("heading", name=MANAGE_SUMMARY)).to_be_visible()
    expect(card).to_contain_text("Anna Novak · Harbour Dental Practice")
    expect(card).to_contain_text("Needs approval because it gives manage access.")
    mark_page(member)

    card.get_by_role("button", name="Approve").click()

    expect(console.get_by_text("Approved: the change is being made for the member.")).to_be_visible()
    expect(console.get_by_text("No change waits for approval.")).to_be_visible()
    expect(chat_log).to_contain_text(MANAGE_DONE, timeout=TURN_TIMEOUT_MS)
    assert not_reloaded(member)
    assert any("Approved by Sophie Durand. Making the change…" in text for text in member.evaluate("window.logTexts"))
    wait_for(lambda: CalendarAccess.objects.filter(calendar=harbour.novak_surgery, user=harbour.tomas).exists())
    wait_until_idle(timeout=30)
    access = CalendarAccess.objects.get(calendar=harbour.novak_surgery, user=harbour.tomas)
    assert access.level == "manage"
    proposal.refresh_from_db()
    assert (proposal.status, proposal.reviewed_by_id) == (ActionProposal.Status.EXECUTED, staff.pk)
    assert decisions_of(proposal, "approve") == [staff]
    assert decisions_of(proposal, "executed") == [harbour.anna]  # made on the member's authority


# --- Two members of staff, one conversation ------------------------------------------------------------------


def test_two_people_take_over_at_once_and_only_one_gets_it(people, asgi_server, harbour, staff):
    colleague = UserFactory(username="marc", first_name="Marc", last_name="Leroy", platform_role="support")
    conversation = Conversation.objects.create(user=harbour.anna, organization=harbour.org, title=HANDOFF_REQUEST)
    Message.objects.create(conversation=conversation, role=Message.Role.USER, text=HANDOFF_REQUEST)
    assert conversation_hand_off(conversation_id=conversation.pk, member=harbour.anna)
    url = f"{asgi_server}/console/conversations/{conversation.pk}/"
    tabs = {}
    for username in ("sophie", "marc"):
        tabs[username] = people.new(username)
        log_in(tabs[username], asgi_server, username)
        open_console(tabs[username], url)
        expect(tabs[username].get_by_role("button", name="Take over")).to_be_enabled()

    # Both submit within a few milliseconds, neither waiting for its page to load.
    for tab in tabs.values():
        tab.evaluate("""() => document.querySelector("form[action$='/take-over/']").requestSubmit()""")

    said = {}
    for username, tab in tabs.items():
        notice = tab.locator(".kb-messages")
        expect(notice).to_contain_text("taken this conversation over")
        said[username] = notice.inner_text().strip()
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.WITH_STAFF
    winner = {staff.pk: "sophie", colleague.pk: "marc"}[conversation.assignee_id]
    loser = "marc" if winner == "sophie" else "sophie"
    winner_name = conversation.assignee.display_name
    assert said[winner] == TAKEN
    assert said[loser] == f"{winner_name} has already taken this conversation over."
    expect(tabs[winner].get_by_label("Your reply to Anna Novak")).to_be_visible()
    expect(tabs[loser].locator("#console-actions")).to_contain_text(f"{winner_name} has this conversation.")
    expect(tabs[loser].get_by_label("Your reply to Anna Novak")).to_be_hidden()
    expect(tabs[loser].get_by_role("button", name="Take over")).to_have_count(0)
    assert [user.pk for user in decisions_of(conversation, "take_over")] == [conversation.assignee_id]
    assert conversation.events.filter(type="participant").count() == 1


# --- A logout ends the other tabs' chat ----------------------------------------------------------------------


def test_a_logout_in_one_tab_ends_the_chat_in_the_other(people, asgi_server, harbour, worker):
    conversation = Conversation.objects.create(user=harbour.anna, organization=harbour.org, title="Two tabs")
    first = people.new("anna")
    log_in(first, asgi_server, "anna")
    second = first.context.new_page()  # the same session
    for tab in (first, second):
        open_chat(tab, f"{asgi_server}/chat/{conversation.pk}/")
    messages_before = Message.objects.count()

    first.get_by_role("button", name="Log out").click()

    expect(first).to_have_url(re.compile(r"/accounts/login/"))
    expect(second.locator("#chat-connection-text")).to_have_text(ENDED)  # nothing done in the second tab
    ask(second, BOOK_REQUEST)
    second.wait_for_timeout(1000)
    expect(second.locator("#chat-connection-text")).to_have_text(ENDED)
    assert Message.objects.count() == messages_before
