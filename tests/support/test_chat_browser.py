"""The chat page in Chromium.

End to end: Chromium against a real daphne process (pages and socket) and a real Celery worker running the
chat graph with the offline engine, which calls the platform API over HTTP. Anna (owner of "Dr Novak
surgery") asks Alfred; the page shows the status, the proposal form and the result.

Protocol: the same page against a scripted socket (Playwright's `route_web_socket`), for what the offline
engine never produces on demand: streamed tokens cut by a reconnect, a lost acknowledgement, edited fields.
"""

import json
import re
import time
from pathlib import Path
from unittest import mock

import pytest
from auditlog.models import LogEntry
from playwright.sync_api import expect

from support.models import ActionProposal, CalendarAccess, Conversation, Message
from tests.browser import DEFAULT_TIMEOUT_MS, browser, page  # noqa: F401
from tests.factories import (
    CalendarAccessFactory,
    CalendarFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
    article_published,
)
from tests.support.chat_client import wait_until_idle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "pw-for-tests"  # tests.factories.UserFactory's
REQUEST = "Give Tomas Reyes booking access to my surgery calendar"
SUMMARY = "Tomas Reyes will be able to book appointments in Dr Novak surgery"
DONE = "Done: Tomas Reyes can now book appointments in Dr Novak surgery."
TURN_TIMEOUT_MS = 60_000  # the first turn of a worker loads the offline engine
NBSP = "\u00a0"  # French puts one before a colon
PERMISSIONS = (
    "## Levels\n"
    "A calendar belongs to one practitioner. View lets other members look at the schedule. Book lets them add, "
    "reschedule and cancel appointments as well. Manage adds the right to edit working hours and permissions."
)
DEMO_ARTICLES = Path(__file__).resolve().parents[2] / "knowledge" / "demo_articles"


class Harbour:
    """Harbour Dental Practice, committed: the server and the worker are other processes."""

    def __init__(self):
        self.org = OrganizationFactory(name="Harbour Dental Practice")
        self.anna = self._member("anna", "Anna", "Novak", "practitioner")
        self.ben = self._member("ben", "Ben", "Okafor", "practitioner")
        self.tom = self._member("tom", "Tom", "Fisher", "secretary")
        self.tomas = self._member("tomas", "Tomas", "Reyes", "assistant")
        self.novak_main = CalendarFactory(organization=self.org, owner=self.anna, name="Dr Novak appointments")
        self.novak_surgery = CalendarFactory(organization=self.org, owner=self.anna, name="Dr Novak surgery")
        self.okafor_main = CalendarFactory(organization=self.org, owner=self.ben, name="Dr Okafor appointments")
        CalendarAccessFactory(calendar=self.novak_main, user=self.tom, level="view", granted_by=self.anna)

    def _member(self, username, first, last, role):
        user = UserFactory(username=username, first_name=first, last_name=last)
        MembershipFactory(user=user, organization=self.org, role=role)
        return user


@pytest.fixture
def harbour(transactional_db, asgi_server):
    return Harbour()


@pytest.fixture
def worker(harbour, celery_worker_process):
    yield celery_worker_process
    wait_until_idle(timeout=30)  # let a turn finish before the tables are emptied under it


def log_in(page, base_url, username, *, username_label="Username", password_label="Password", button="Log in"):  # noqa: F811
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label(username_label).fill(username)
    page.get_by_label(password_label).fill(PASSWORD)
    page.get_by_role("button", name=button, exact=True).click()
    page.wait_for_url(f"{base_url}/")


def open_chat(page, url, connected="Connected"):  # noqa: F811
    page.goto(url)
    expect(page.locator("#chat-connection-text")).to_have_text(connected)


def ask(page, text, *, label="Your message to Alfred", send="Send"):  # noqa: F811
    page.get_by_label(label).fill(text)
    page.get_by_role("button", name=send, exact=True).click()


def shown_once(page):  # noqa: F811
    """Nothing the page shows is there twice: the events it applied, its messages, its forms."""
    rendered = page.evaluate("window.alfredChat.rendered")
    assert len(rendered) == len(set(rendered)), rendered
    ids = page.locator("#chat-log .msg").evaluate_all("nodes => nodes.map(n => n.dataset.messageId)")
    assert len(ids) == len(set(ids)), ids
    forms = page.locator("#chat-log .chat-proposal").evaluate_all("nodes => nodes.map(n => n.dataset.proposalId)")
    assert len(forms) == len(set(forms)), forms


def introduced_in_order(page) -> bool:  # noqa: F811
    """The proposal form follows the assistant message that introduces it, as in a conversation."""
    kinds = page.locator("#chat-log > *").evaluate_all(
        "nodes => nodes.map(n => n.classList.contains('chat-proposal') ? 'form'"
        " : n.classList.contains('msg-assistant') ? 'assistant' : 'other')"
    )
    form = kinds.index("form")
    assert kinds[form - 1] == "assistant", kinds
    return True


def wait_for(predicate, timeout_ms=TURN_TIMEOUT_MS):
    deadline = time.monotonic() + timeout_ms / 1000
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


# --- End to end: the real server, the real worker ----------------------------------------------------


def test_anna_confirms_a_proposal_and_the_access_is_granted(page, asgi_server, harbour, worker):  # noqa: F811
    log_in(page, asgi_server, "anna")
    page.get_by_role("link", name="Chat with Alfred").click()
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")

    ask(page, REQUEST)

    log = page.get_by_role("log")
    expect(log.locator(".msg-user")).to_have_text(re.compile(re.escape(REQUEST)))
    expect(page).to_have_url(re.compile(rf"{re.escape(asgi_server)}/chat/\d+/$"))
    expect(page.locator("#chat-list-items a[aria-current=page]")).to_contain_text(REQUEST)
    form = page.locator(".chat-proposal")
    expect(form).to_be_visible(timeout=TURN_TIMEOUT_MS)
    expect(page.get_by_role("status")).to_have_text("Waiting for your confirmation.")
    expect(form.get_by_role("group")).to_contain_text("Proposed change: give access")
    expect(form.locator(".proposal-summary")).to_have_text(SUMMARY)
    expect(form.get_by_label("Member")).to_have_value(str(harbour.tomas.pk))
    expect(form.get_by_label("Calendar")).to_have_value(str(harbour.novak_surgery.pk))
    expect(form.get_by_label("Access")).to_have_value("book")
    expect(form.get_by_label("Access").locator("option:checked")).to_have_text("Book")
    assert introduced_in_order(page)

    form.get_by_role("button", name="Confirm").click()

    expect(form.locator(".proposal-result")).to_have_text(DONE, timeout=TURN_TIMEOUT_MS)
    expect(form.get_by_role("button", name="Confirm")).to_be_disabled()
    expect(log.locator(".msg-assistant").last).to_have_text(re.compile(re.escape(DONE)))
    expect(page.get_by_role("status")).to_have_text("Done.", timeout=TURN_TIMEOUT_MS)
    shown_once(page)

    access = CalendarAccess.objects.get(calendar=harbour.novak_surgery, user=harbour.tomas)
    assert access.level == "book"
    entries = LogEntry.objects.get_for_object(access)
    proposal = ActionProposal.objects.get(conversation__user=harbour.anna)
    assert [(e.actor_id, e.additional_data) for e in entries] == [
        (
            harbour.anna.pk,
            {"service": "agents", "proposal": proposal.pk, "organization": harbour.org.pk, "token": mock.ANY},
        )  # the change names the proposal it carries out, and its practice
    ]

    # Reloaded, the page shows the same history from the server, the form decided.
    page.reload()
    expect(page.locator(".chat-proposal .proposal-result")).to_have_text(DONE)
    expect(page.locator(".chat-proposal").get_by_role("button", name="Confirm")).to_be_disabled()
    expect(page.locator(".chat-proposal").get_by_label("Member")).to_be_disabled()
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    assert introduced_in_order(page)


def test_anna_rejects_a_proposal_and_nothing_changes(page, asgi_server, harbour, worker):  # noqa: F811
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/")
    accesses_before = sorted(CalendarAccess.objects.values_list("calendar_id", "user_id", "level"))

    ask(page, REQUEST)
    form = page.locator(".chat-proposal")
    expect(form.locator(".proposal-summary")).to_have_text(SUMMARY, timeout=TURN_TIMEOUT_MS)
    form.get_by_role("button", name="Reject").click()

    expect(form.get_by_role("button", name="Reject")).to_be_disabled()
    expect(page.get_by_role("log").locator(".msg-assistant").last).to_have_text(
        re.compile("All right, I changed nothing."), timeout=TURN_TIMEOUT_MS
    )
    expect(page.get_by_role("status")).to_have_text("Done.", timeout=TURN_TIMEOUT_MS)
    shown_once(page)
    assert sorted(CalendarAccess.objects.values_list("calendar_id", "user_id", "level")) == accesses_before


def test_a_rejected_proposal_shows_its_result(page, asgi_server, harbour, worker):  # noqa: F811
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/")
    ask(page, REQUEST)
    form = page.locator(".chat-proposal")
    expect(form.locator(".proposal-summary")).to_have_text(SUMMARY, timeout=TURN_TIMEOUT_MS)

    form.get_by_role("button", name="Reject").click()

    expect(page.get_by_role("status")).to_have_text("Done.", timeout=TURN_TIMEOUT_MS)
    expect(form.locator(".proposal-result")).to_have_text("Rejected: nothing was changed.", timeout=2000)


def test_a_reconnect_mid_turn_shows_everything_once(page, asgi_server, harbour, worker):  # noqa: F811
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/")
    # Lose the socket as soon as Alfred starts working, as a network failure would: the turn goes on
    # in the worker, and the page catches up after reconnecting.
    page.evaluate(
        """() => {
          window.dropped = 0;
          window.alfredChat.onFrame = (frame) => {
            if (frame.type === "status" && frame.state === "running" && !window.dropped) {
              window.dropped = 1;
              window.alfredChat.dropConnection();
            }
          };
        }"""
    )

    ask(page, REQUEST)

    expect(page.locator("#chat-connection-text")).to_have_text("Reconnecting…", timeout=TURN_TIMEOUT_MS)
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    form = page.locator(".chat-proposal")
    expect(form.locator(".proposal-summary")).to_have_text(SUMMARY, timeout=TURN_TIMEOUT_MS)
    expect(page.get_by_role("status")).to_have_text("Waiting for your confirmation.")
    conversation = Conversation.objects.get(user=harbour.anna)
    wait_for(
        lambda: page.evaluate("window.alfredChat.lastSeq") == Conversation.objects.get(pk=conversation.pk).last_seq
    )
    replies = list(Message.objects.filter(conversation=conversation, role="assistant").values_list("id", "text"))
    assistant = page.get_by_role("log").locator(".msg-assistant")
    expect(assistant).to_have_count(len(replies))
    for (message_id, text), node in zip(replies, assistant.all(), strict=True):
        expect(node).to_have_attribute("data-message-id", str(message_id))
        expect(node.locator(".msg-text")).to_have_text(text)
    expect(page.get_by_role("log").locator(".msg-user")).to_have_count(1)
    expect(form).to_have_count(1)
    assert page.evaluate("window.dropped") == 1
    shown_once(page)


def test_a_message_whose_ack_was_lost_is_stored_once(page, asgi_server, harbour, worker):  # noqa: F811
    conversation = Conversation.objects.create(user=harbour.anna, organization=harbour.org, title="Earlier")
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/{conversation.pk}/")

    # Send, and lose the socket before the acknowledgement arrives: after reconnecting, the page sends
    # the message again with the same client id (unless the catch-up shows it stored), never twice.
    page.get_by_label("Your message to Alfred").fill(REQUEST)
    page.evaluate("() => { document.getElementById('chat-send').click(); window.alfredChat.dropConnection(); }")

    expect(page.locator("#chat-connection-text")).to_have_text("Connected", timeout=TURN_TIMEOUT_MS)
    expect(page.locator(".chat-proposal .proposal-summary")).to_have_text(SUMMARY, timeout=TURN_TIMEOUT_MS)
    expect(page.get_by_role("log").locator(".msg-user")).to_have_count(1)
    expect(page.get_by_role("log").locator(".msg-user .msg-note")).to_have_text("")
    assert page.evaluate("window.alfredChat.unacknowledged") == []
    assert Message.objects.filter(conversation=conversation, role="user").count() == 1
    assert Conversation.objects.filter(user=harbour.anna).count() == 1
    shown_once(page)


def test_the_first_message_whose_ack_was_lost_starts_one_conversation(page, asgi_server, harbour, worker):  # noqa: F811
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/")

    page.get_by_label("Your message to Alfred").fill(REQUEST)
    page.evaluate("() => { document.getElementById('chat-send').click(); window.alfredChat.dropConnection(); }")

    expect(page.locator(".chat-proposal .proposal-summary")).to_have_text(SUMMARY, timeout=TURN_TIMEOUT_MS)
    wait_until_idle(timeout=30)
    assert Conversation.objects.filter(user=harbour.anna).count() == 1


def test_enter_sends_and_shift_enter_adds_a_line(page, asgi_server, harbour, worker):  # noqa: F811
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/")
    box = page.get_by_label("Your message to Alfred")

    box.focus()
    page.keyboard.type("Give Tomas Reyes booking access")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("to my surgery calendar")
    expect(box).to_have_value("Give Tomas Reyes booking access\nto my surgery calendar")
    expect(page.get_by_role("log").locator(".msg")).to_have_count(0)

    page.keyboard.press("Enter")

    expect(box).to_have_value("")
    expect(box).to_be_focused()
    expect(page.get_by_role("log").locator(".msg-user .msg-text")).to_have_text(
        "Give Tomas Reyes booking access\nto my surgery calendar"
    )
    expect(page.locator(".chat-proposal .proposal-summary")).to_have_text(SUMMARY, timeout=TURN_TIMEOUT_MS)
    assert Message.objects.get(role="user").text == "Give Tomas Reyes booking access\nto my surgery calendar"


def test_the_page_is_in_french_for_a_french_browser(browser, asgi_server, harbour, worker):  # noqa: F811
    context = browser.new_context(locale="fr-FR")
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    tab = context.new_page()
    try:
        log_in(
            tab,
            asgi_server,
            "anna",
            username_label="Nom d’utilisateur",
            password_label="Mot de passe",
            button="Se connecter",
        )
        tab.get_by_role("link", name="Discuter avec Alfred").click()
        expect(tab.locator("#chat-connection-text")).to_have_text("Connecté")
        expect(tab.get_by_role("heading", name="Discuter avec Alfred")).to_be_visible()
        expect(tab.get_by_role("button", name="Nouvelle conversation")).to_be_visible()
        expect(tab.locator("#chat-list-empty")).to_have_text(
            "Aucune conversation pour l’instant. Vos conversations avec Alfred apparaîtront ici."
        )

        ask(
            tab,
            "Donnez à Tomas Reyes l’accès en réservation à mon agenda Dr Novak surgery",
            label="Votre message à Alfred",
            send="Envoyer",
        )

        form = tab.locator(".chat-proposal")
        expect(form).to_be_visible(timeout=TURN_TIMEOUT_MS)
        expect(tab.get_by_role("status")).to_have_text("En attente de votre confirmation.")
        expect(form.get_by_role("group")).to_contain_text(f"Modification proposée{NBSP}: donner un accès")
        expect(form.locator(".proposal-summary")).to_have_text(
            "Tomas Reyes pourra prendre des rendez-vous dans Dr Novak surgery"
        )
        expect(form.get_by_label("Membre")).to_have_value(str(harbour.tomas.pk))
        expect(form.get_by_label("Agenda")).to_have_value(str(harbour.novak_surgery.pk))
        expect(form.get_by_label("Accès").locator("option:checked")).to_have_text("Réserver")

        form.get_by_role("button", name="Confirmer").click()

        expect(form.locator(".proposal-result")).to_have_text(
            f"C’est fait{NBSP}: Tomas Reyes peut maintenant prendre des rendez-vous dans Dr Novak surgery.",
            timeout=TURN_TIMEOUT_MS,
        )
        expect(tab.get_by_role("status")).to_have_text("Terminé.", timeout=TURN_TIMEOUT_MS)
        assert CalendarAccess.objects.get(calendar=harbour.novak_surgery, user=harbour.tomas).level == "book"
    finally:
        context.close()


def test_an_answers_sources_stay_after_a_reload_and_a_reconnect(page, asgi_server, harbour, worker):  # noqa: F811
    article_published("calendar-permissions", "Calendar permissions explained", PERMISSIONS)
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/")

    ask(page, "What can I do with Book permission on a calendar?")

    answer = page.get_by_role("log").locator(".msg-assistant").last
    expect(answer.locator(".msg-text")).to_contain_text("Book lets them add", timeout=TURN_TIMEOUT_MS)
    expect(answer.locator(".msg-text")).to_contain_text("[1]")
    sources = answer.locator(".msg-sources")
    expect(sources.locator(".msg-sources-title")).to_have_text("Sources")
    link = sources.get_by_role("link", name="[1] Calendar permissions explained")
    expect(link).to_have_attribute("href", "/kb/calendar-permissions/")
    assert sources.locator(".msg-sources-section").evaluate("node => node.textContent") == " — Levels"
    live = sources.evaluate("node => node.outerHTML")
    expect(page.get_by_role("status")).to_have_text("Done.", timeout=TURN_TIMEOUT_MS)

    # Reloaded, the page renders the same box from the server: same markup, same link.
    page.reload()
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    reloaded = page.get_by_role("log").locator(".msg-sources")
    expect(reloaded).to_have_count(1)
    assert reloaded.evaluate("node => node.outerHTML") == live
    expect(reloaded.get_by_role("link", name="[1] Calendar permissions explained")).to_have_attribute(
        "href", "/kb/calendar-permissions/"
    )
    assert page.request.get(f"{asgi_server}/kb/calendar-permissions/").ok  # the link leads to the article

    # A reconnect catches up without drawing the box again.
    page.evaluate("window.alfredChat.dropConnection()")
    expect(page.locator("#chat-connection-text")).to_have_text("Reconnecting…")
    expect(page.locator("#chat-connection-text")).to_have_text("Connected", timeout=TURN_TIMEOUT_MS)
    expect(reloaded).to_have_count(1)
    assert reloaded.evaluate("node => node.outerHTML") == live
    shown_once(page)


def test_each_welcome_example_is_annas_own_and_gets_its_answer(page, asgi_server, harbour, worker):  # noqa: F811
    demo = (DEMO_ARTICLES / "sms-email-reminders.md").read_text(encoding="utf-8").split("---", 2)[2].strip()
    article_published("sms-email-reminders", "Appointment reminders by SMS and email", demo)
    change = "Give Ben Okafor booking access to Dr Novak appointments"  # her first calendar, a colleague without access
    question = "How do I set up SMS reminders?"  # a published article answers it
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/")
    expect(page.locator("#chat-welcome").get_by_role("button")).to_have_text([change, question])

    page.get_by_role("button", name=change).click()

    log = page.get_by_role("log")
    expect(log.locator(".msg-user .msg-text")).to_have_text(change)
    expect(page.get_by_label("Your message to Alfred")).to_have_value("")
    expect(page.locator("#chat-welcome")).to_be_hidden()
    form = page.locator(".chat-proposal")
    expect(form.locator(".proposal-summary")).to_have_text(
        "Ben Okafor will be able to book appointments in Dr Novak appointments", timeout=TURN_TIMEOUT_MS
    )
    expect(form.get_by_label("Member")).to_have_value(str(harbour.ben.pk))
    expect(form.get_by_label("Calendar")).to_have_value(str(harbour.novak_main.pk))
    expect(form.get_by_label("Access")).to_have_value("book")
    expect(page.get_by_role("status")).to_have_text("Waiting for your confirmation.")

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    page.get_by_role("button", name=question).click()

    expect(log.locator(".msg-user .msg-text")).to_have_text(question)
    answer = log.locator(".msg-assistant").last
    expect(answer.locator(".msg-text")).to_contain_text("[1]", timeout=TURN_TIMEOUT_MS)
    expect(answer.get_by_role("link", name="[1] Appointment reminders by SMS and email")).to_have_attribute(
        "href", "/kb/sms-email-reminders/"
    )
    expect(page.get_by_role("status")).to_have_text("Done.", timeout=TURN_TIMEOUT_MS)
    texts = Message.objects.filter(conversation__user=harbour.anna, role="user").order_by("id")
    assert list(texts.values_list("text", flat=True)) == [change, question]
    assert Conversation.objects.filter(user=harbour.anna).count() == 2


def test_a_person_from_support_live_and_after_a_reload(page, asgi_server, harbour):  # noqa: F811
    """Against the real server (no turn runs): Back to Alfred, then a person takes over, answers and closes."""
    from support.services.chat import event_publish
    from support.services.handoff import conversation_close, conversation_take_over, staff_message_send

    sophie = UserFactory(username="sophie", first_name="Sophie", last_name="Durand", platform_role="support")
    conversation = Conversation.objects.create(
        user=harbour.anna, organization=harbour.org, title="A person please", status="handed_off"
    )
    event_publish(conversation_id=conversation.pk, type="status", payload={"state": "handed_off", "text": ""})
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/{conversation.pk}/")
    notice = page.locator("#chat-handoff")
    expect(page.get_by_role("status")).to_have_text(
        "Waiting for a person from support. Your messages are kept for them."
    )

    notice.get_by_role("button", name="Back to Alfred").click()

    expect(notice).to_be_hidden()
    expect(page.locator("#chat")).to_have_attribute("data-conversation-status", "open")
    wait_for(lambda: Conversation.objects.get(pk=conversation.pk).status == "open", timeout_ms=5000)

    conversation_take_over(staff=sophie, conversation_id=conversation.pk)
    staff_message_send(staff=sophie, conversation_id=conversation.pk, text="Hello Anna, Sophie here.")

    log = page.get_by_role("log")
    joined = "Sophie Durand from the support team joined the conversation."
    expect(log.locator(".chat-system")).to_have_text([joined])
    expect(log.locator(".msg-staff .msg-author")).to_have_text("Sophie Durand · Support")
    expect(log.locator(".msg-staff .msg-text")).to_have_text("Hello Anna, Sophie here.")
    expect(page.get_by_role("status")).to_have_text("Sophie Durand from support is answering you.")

    page.reload()  # the same from the server
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    expect(log.locator(".chat-system")).to_have_text([joined])
    expect(log.locator(".msg-staff .msg-author")).to_have_text("Sophie Durand · Support")
    expect(page.get_by_role("status")).to_have_text("Sophie Durand from support is answering you.")
    expect(notice).to_be_hidden()
    shown_once(page)

    conversation_close(staff=sophie, conversation_id=conversation.pk)

    closed = "This conversation is closed. Start a new conversation to ask something else."
    expect(page.get_by_role("status")).to_have_text(closed)
    expect(page.get_by_label("Your message to Alfred")).to_be_disabled()
    page.reload()
    expect(page.get_by_role("status")).to_have_text(closed)
    expect(page.get_by_label("Your message to Alfred")).to_be_disabled()
    expect(page.locator("#chat-send")).to_be_disabled()


# --- The protocol, against a scripted socket ------------------------------------------------------------


class ScriptedSocket:
    """Stands in for /ws/chat/: records what the page sends on each connection; the test answers."""

    def __init__(self, page):  # noqa: F811
        self.connections = []
        page.route_web_socket(re.compile(r"/ws/chat/$"), self._connect)

    def _connect(self, ws):
        connection = {"ws": ws, "received": []}
        ws.on_message(lambda message: connection["received"].append(json.loads(message)))
        self.connections.append(connection)

    @property
    def ws(self):
        return self.connections[-1]["ws"]

    def received(self, index=-1):
        return self.connections[index]["received"]

    def send(self, *frames):
        for frame in frames:
            self.ws.send(json.dumps(frame))


def until(page, predicate, timeout_ms=DEFAULT_TIMEOUT_MS):  # noqa: F811
    """Wait for a condition on what the scripted socket received (Playwright handles it while it waits)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(20)


@pytest.fixture
def scripted(page, asgi_server, harbour):  # noqa: F811
    socket = ScriptedSocket(page)
    conversation = Conversation.objects.create(user=harbour.anna, organization=harbour.org, title="Scripted")
    log_in(page, asgi_server, "anna")
    open_chat(page, f"{asgi_server}/chat/{conversation.pk}/")
    until(page, lambda: socket.received() == [{"type": "resume", "conversation": conversation.pk, "after": 0}])
    socket.send({"type": "resumed", "conversation": conversation.pk, "last_seq": 0, "run_status": "idle"})
    socket.conversation = conversation.pk
    return socket


def user_message(conversation, seq, frame, message_id=1):
    payload = {"id": message_id, "role": "user", "text": frame["text"], "status": "pending", "client_id": frame["id"]}
    return {"type": "message", "conversation": conversation, "seq": seq, "message": payload}


def reply(conversation, text, *, status="complete", seq=None, message_id=2):
    frame = {
        "type": "message",
        "conversation": conversation,
        "message": {"id": message_id, "role": "assistant", "text": text, "status": status},
    }
    return frame if seq is None else {**frame, "seq": seq}


def token(conversation, offset, text, message_id=2):
    return {"type": "token", "conversation": conversation, "message": message_id, "offset": offset, "text": text}


def test_tokens_cut_by_a_reconnect_make_the_complete_reply_once(page, scripted):  # noqa: F811
    c = scripted.conversation
    ask(page, "Hello")
    until(page, lambda: any(f["type"] == "message" for f in scripted.received()))
    sent = next(f for f in scripted.received() if f["type"] == "message")
    scripted.send(
        {"type": "ack", "id": sent["id"], "conversation": c, "created": True, "message": {"id": 1}},
        user_message(c, 1, sent),
        {"type": "status", "conversation": c, "seq": 2, "state": "running", "text": "Thinking…"},
        token(c, 0, "Hello"),
        token(c, 5, " there"),
    )
    assistant = page.get_by_role("log").locator(".msg-assistant .msg-text")
    expect(assistant).to_have_text("Hello there")
    expect(page.get_by_role("status")).to_have_text("Alfred is working… Thinking…")
    expect(page.get_by_role("log")).to_have_attribute("aria-busy", "true")

    scripted.ws.close(code=1011, reason="gone")  # the server goes away mid-answer
    expect(page.locator("#chat-connection-text")).to_have_text("Reconnecting…")
    until(page, lambda: len(scripted.connections) == 2, timeout_ms=5000)
    until(page, lambda: scripted.received() == [{"type": "resume", "conversation": c, "after": 2}])
    scripted.send(
        {"type": "status", "conversation": c, "seq": 2, "state": "running", "text": "Thinking…"},  # a repeat
        reply(c, "Hello there, I", status="streaming"),  # the text so far, from the database
        token(c, 5, " there"),  # already shown
        token(c, 11, ", I am"),  # half of it shown already
        token(c, 30, "???"),  # a gap: skipped, the final message fills it
        {"type": "resumed", "conversation": c, "last_seq": 2, "run_status": "running"},
    )
    expect(assistant).to_have_text("Hello there, I am")
    scripted.send(
        reply(c, "Hello there, I am Alfred.", seq=3),
        {"type": "status", "conversation": c, "seq": 4, "state": "done", "text": ""},
        reply(c, "Hello there, I am Alfred.", seq=3),  # a repeat
    )

    expect(assistant).to_have_text("Hello there, I am Alfred.")
    expect(page.get_by_role("status")).to_have_text("Done.")
    expect(page.locator("#chat-connection-text")).to_have_text("Connected")
    expect(page.get_by_role("log").locator(".msg")).to_have_count(2)
    expect(page.get_by_role("log")).not_to_have_attribute("aria-busy", "true")
    assert page.evaluate("window.alfredChat.rendered") == [1, 2, 3, 4]
    assert [f["type"] for f in scripted.received()] == ["resume"]  # the message was acknowledged: not sent again


def test_an_unacknowledged_message_is_sent_again_with_the_same_id(page, scripted):  # noqa: F811
    c = scripted.conversation
    ask(page, "Are you there?")
    until(page, lambda: any(f["type"] == "message" for f in scripted.received()))
    first = next(f for f in scripted.received() if f["type"] == "message")
    expect(page.get_by_role("log").locator(".msg-user .msg-note")).to_have_text("Sending…")

    scripted.ws.close(code=1011)  # gone before the ack

    until(page, lambda: len(scripted.connections) == 2, timeout_ms=5000)
    until(page, lambda: scripted.received() == [{"type": "resume", "conversation": c, "after": 0}])
    scripted.send({"type": "resumed", "conversation": c, "last_seq": 0, "run_status": "idle"})
    until(page, lambda: len(scripted.received()) == 2)
    again = scripted.received()[1]
    assert again == first
    assert re.fullmatch(r"[A-Za-z0-9_-]{8,64}", again["id"])
    scripted.send({"type": "ack", "id": again["id"], "conversation": c, "created": True, "message": {"id": 7}})
    expect(page.get_by_role("log").locator(".msg-user .msg-note")).to_have_text("")
    assert page.evaluate("window.alfredChat.unacknowledged") == []


def proposal_form(conversation, harbour, seq=1):
    return {
        "type": "form",
        "conversation": conversation,
        "seq": seq,
        "kind": "proposal",
        "proposal": {
            "id": 41,
            "hash": "a" * 64,
            "action": "grant",
            "summary": SUMMARY,
            "status": "proposed",
            "expires_at": "2099-01-01T00:00:00+00:00",
            "fields": {
                "member": {
                    "value": harbour.tomas.pk,
                    "options": [
                        {"value": harbour.tom.pk, "label": "Tom Fisher"},
                        {"value": harbour.tomas.pk, "label": "Tomas Reyes"},
                    ],
                },
                "calendar": {
                    "value": harbour.novak_surgery.pk,
                    "options": [
                        {"value": harbour.novak_main.pk, "label": "Dr Novak appointments"},
                        {"value": harbour.novak_surgery.pk, "label": "Dr Novak surgery"},
                    ],
                },
                "level": {"value": "book", "options": [{"value": v, "label": v} for v in ("view", "book", "manage")]},
            },
        },
    }


def test_a_confirmation_sends_only_the_fields_the_person_changed(page, scripted, harbour):  # noqa: F811
    c = scripted.conversation
    scripted.send(proposal_form(c, harbour))
    form = page.locator(".chat-proposal")
    expect(form.get_by_label("Access").locator("option")).to_have_text(["View", "Book", "Manage"])

    form.get_by_label("Access").select_option("manage")
    form.get_by_label("Member").select_option(str(harbour.tom.pk))
    form.get_by_role("button", name="Confirm").click()

    until(page, lambda: any(f["type"] == "confirm" for f in scripted.received()))
    confirm = next(f for f in scripted.received() if f["type"] == "confirm")
    assert confirm == {
        "type": "confirm",
        "proposal": 41,
        "hash": "a" * 64,
        "decision": "confirm",
        "values": {"member": harbour.tom.pk, "level": "manage"},
    }
    expect(form.locator(".proposal-result")).to_have_text("Sending your decision…")
    expect(form.locator(".proposal-result")).to_be_focused()
    expect(form.get_by_role("button", name="Reject")).to_be_disabled()
    scripted.send(
        {
            "type": "result",
            "conversation": c,
            "seq": 2,
            "proposal": 41,
            "status": "expired",
            "code": "edited",
            "summary": SUMMARY,
        }
    )
    expect(form.locator(".proposal-result")).to_have_text(
        "Changed: Alfred checks your edited request and proposes it again."
    )


def test_a_rejection_sends_no_values_and_errors_are_shown_politely(page, scripted, harbour):  # noqa: F811
    c = scripted.conversation
    scripted.send(proposal_form(c, harbour))
    form = page.locator(".chat-proposal")

    form.get_by_role("button", name="Reject").click()

    until(page, lambda: any(f["type"] == "confirm" for f in scripted.received()))
    confirm = next(f for f in scripted.received() if f["type"] == "confirm")
    assert confirm == {"type": "confirm", "proposal": 41, "hash": "a" * 64, "decision": "reject"}
    scripted.send({"type": "error", "code": "expired", "detail": "This proposal has expired.", "error_id": "abc123"})
    expected = "This proposal has expired: nothing was changed. Ask Alfred again if you still need it."
    expect(form.locator(".proposal-result")).to_have_text(expected)
    expect(page.locator("#chat-error")).to_have_text(f"{expected} Reference: abc123")
    expect(page.locator("#chat-error")).to_have_attribute("aria-live", "polite")


def test_a_choice_answers_with_the_label_and_text_is_never_html(page, scripted):  # noqa: F811
    c = scripted.conversation
    hostile = '<img src=x onerror="window.pwned=1">'
    scripted.send(
        reply(c, f"Which access? {hostile}", seq=1, message_id=5),
        {
            "type": "form",
            "conversation": c,
            "seq": 2,
            "kind": "choice",
            "field": "level",
            "question": "Which access?",
            "options": [{"value": "view", "label": "view"}, {"value": "book", "label": "book"}],
        },
    )
    choice = page.get_by_role("group", name="Which access?")
    expect(choice.get_by_role("button")).to_have_text(["View", "Book"])
    expect(page.get_by_role("log").locator(".msg-assistant .msg-text")).to_have_text(f"Which access? {hostile}")
    assert page.evaluate("window.pwned") is None
    assert page.locator("#chat-log img").count() == 0

    choice.get_by_role("button", name="Book").click()

    until(page, lambda: any(f["type"] == "message" for f in scripted.received()))
    sent = next(f for f in scripted.received() if f["type"] == "message")
    assert sent["text"] == "book" and sent["conversation"] == c
    expect(choice.get_by_role("button", name="View")).to_be_disabled()
    expect(page.get_by_label("Your message to Alfred")).to_be_focused()


# --- A person from support, against the scripted socket ---------------------------------------------------


def staff_message(conversation, seq, text, *, name="Sophie Durand", message_id=30):
    message = {
        "id": message_id,
        "role": "staff",
        "text": text,
        "status": "complete",
        "author": {"name": name, "role": "support"},
    }
    return {"type": "message", "conversation": conversation, "seq": seq, "message": message}


def status(conversation, seq, state, text=""):
    return {"type": "status", "conversation": conversation, "seq": seq, "state": state, "text": text}


def participant(conversation, seq, action, name="Sophie Durand"):
    return {
        "type": "participant",
        "conversation": conversation,
        "seq": seq,
        "action": action,
        "name": name,
        "role": "support",
    }


def test_a_person_from_support_joins_writes_and_leaves_live(page, scripted):  # noqa: F811
    c = scripted.conversation
    log = page.get_by_role("log")
    scripted.send(
        participant(c, 1, "joined"),
        status(c, 2, "with_staff", "Sophie Durand"),
        staff_message(c, 3, 'Hello Anna <img src=x onerror="window.pwned=1">'),
        staff_message(c, 3, "a repeat, dropped by its seq"),
    )

    expect(log.locator(".chat-system")).to_have_text(["Sophie Durand from the support team joined the conversation."])
    expect(log.locator(".msg-staff .msg-author")).to_have_text("Sophie Durand · Support")
    expect(log.locator(".msg-staff .msg-text")).to_have_text('Hello Anna <img src=x onerror="window.pwned=1">')
    expect(page.get_by_role("status")).to_have_text("Sophie Durand from support is answering you.")
    expect(page.locator("#chat")).to_have_attribute("data-conversation-status", "with_staff")
    expect(page.get_by_label("Your message to support")).to_be_editable()
    assert page.evaluate("window.pwned") is None

    scripted.send(participant(c, 4, "left"), status(c, 5, "idle"))

    expect(log.locator(".chat-system")).to_have_text(
        [
            "Sophie Durand from the support team joined the conversation.",
            "Sophie Durand left the conversation. Alfred answers again.",
        ]
    )
    expect(page.locator("#chat")).to_have_attribute("data-conversation-status", "open")
    expect(page.get_by_role("status")).to_have_text("")
    expect(page.get_by_label("Your message to Alfred")).to_be_editable()
    expect(log.locator(".msg")).to_have_count(1)
    shown_once(page)


def test_back_to_alfred_withdraws_the_request_for_a_person(page, scripted):  # noqa: F811
    c = scripted.conversation
    notice = page.locator("#chat-handoff")
    expect(notice).to_be_hidden()
    scripted.send(status(c, 1, "handed_off"))
    expect(page.get_by_role("status")).to_have_text(
        "Waiting for a person from support. Your messages are kept for them."
    )
    expect(notice).to_be_visible()

    notice.get_by_role("button", name="Back to Alfred").click()

    until(page, lambda: {"type": "cancel_handoff", "conversation": c} in scripted.received())
    expect(notice.get_by_role("button", name="Back to Alfred")).to_be_disabled()
    scripted.send(status(c, 2, "idle"))
    expect(notice).to_be_hidden()
    expect(page.locator("#chat")).to_have_attribute("data-conversation-status", "open")
    expect(page.get_by_role("status")).to_have_text("")

    scripted.send(status(c, 3, "handed_off"))  # asked again; a person takes it before the withdrawal arrives
    notice.get_by_role("button", name="Back to Alfred").click()
    until(page, lambda: scripted.received().count({"type": "cancel_handoff", "conversation": c}) == 2)
    scripted.send({"type": "error", "code": "not_waiting", "detail": "Nobody is waiting.", "error_id": "e1"})
    expect(notice).to_be_hidden()
    expect(page.locator("#chat-error")).to_have_text(
        "This conversation is no longer waiting for a person. Reference: e1"
    )


def test_a_rate_limited_message_goes_back_to_the_input(page, scripted):  # noqa: F811
    ask(page, "Give Tom view access to my surgery calendar")
    until(page, lambda: any(f["type"] == "message" for f in scripted.received()))
    sent = next(f for f in scripted.received() if f["type"] == "message")

    scripted.send(
        {
            "type": "error",
            "code": "rate_limited",
            "detail": "You are sending many messages.",
            "error_id": "r42",
            "ref": sent["id"],
            "retry_after": 42,
        }
    )

    expect(page.get_by_label("Your message to Alfred")).to_have_value("Give Tom view access to my surgery calendar")
    expect(page.locator("#chat-error")).to_have_text(
        "You are sending many messages. Wait 42 seconds, then send it again. Reference: r42"
    )
    expect(page.get_by_role("log").locator(".msg-user .msg-note")).to_have_text("Not sent.")
    assert page.evaluate("window.alfredChat.unacknowledged") == []


def test_a_closed_conversation_disables_the_composer_live(page, scripted):  # noqa: F811
    c = scripted.conversation
    scripted.send(status(c, 1, "closed"))

    expect(page.get_by_role("status")).to_have_text(
        "This conversation is closed. Start a new conversation to ask something else."
    )
    expect(page.get_by_label("Your message to Alfred")).to_be_disabled()
    expect(page.locator("#chat-send")).to_be_disabled()
    expect(page.locator("#chat-closed").get_by_role("link", name="New conversation")).to_be_visible()
    scripted.send(status(c, 2, "idle"))  # nothing reopens a closed conversation
    expect(page.locator("#chat")).to_have_attribute("data-conversation-status", "closed")


def test_a_confirmation_waiting_for_approval_then_refused(page, scripted, harbour):  # noqa: F811
    c = scripted.conversation
    scripted.send(proposal_form(c, harbour))
    form = page.locator(".chat-proposal")
    form.get_by_role("button", name="Confirm").click()
    until(page, lambda: any(f["type"] == "confirm" for f in scripted.received()))

    result = {"type": "result", "conversation": c, "proposal": 41, "summary": SUMMARY}
    scripted.send(
        {**result, "seq": 2, "status": "awaiting_approval", "code": "", "reasons": ["manage_grant"]},
        status(c, 3, "waiting_approval"),
    )
    expect(form.locator(".proposal-result")).to_have_text(
        "Confirmed. The support team must approve this change before it is made."
    )
    expect(page.get_by_role("status")).to_have_text("Waiting for approval by the support team.")
    expect(form.get_by_role("button", name="Confirm")).to_be_disabled()

    scripted.send(
        {
            **result,
            "seq": 4,
            "status": "rejected",
            "code": "refused",
            "reason": "Ask Dr Novak first.",
            "reviewer": "Sophie",
        }
    )
    expect(form.locator(".proposal-result")).to_have_text(
        "Not approved by support: Ask Dr Novak first. Nothing was changed."
    )
    expect(form).to_have_attribute("data-status", "rejected")
