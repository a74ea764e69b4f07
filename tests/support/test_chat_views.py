"""The chat page (/chat/): who may open it, the list of conversations, the history rendered on the server."""

import json
import re

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from support.models import Conversation
from support.services.chat import ReplyWriter, conversation_start, event_publish, message_receive
from support.services.proposals import proposal_create
from support.views.chat import chat_strings, result_text
from tests.factories import MembershipFactory, UserFactory

PAGE_SIZE = 30


@pytest.fixture(autouse=True)
def _english_after_each_test():
    yield
    translation.activate(settings.LANGUAGE_CODE)  # a request in French must not leak into the next test


def say(conversation, text, reply=None, client_id=None):
    """A user message (stored as the socket stores it) and, if given, Alfred's reply."""
    message, _ = message_receive(conversation=conversation, client_id=client_id or f"client-{text[:20]}", text=text)
    if reply is not None:
        ReplyWriter(conversation_id=conversation.pk, turn_key=f"message:{message.pk}", reply_to_id=message.pk).finish(
            text=reply
        )
    return message


def data_attribute(page: str, name: str) -> str:
    return re.search(rf'data-{name}="([^"]*)"', page).group(1)


# --- Who may open it --------------------------------------------------------------------------------


def test_anonymous_people_are_sent_to_log_in(client, db):
    response = client.get(reverse("chat"))

    assert response.status_code == 302
    assert response.headers["Location"] == f"{reverse('login')}?next=/chat/"


def test_someone_outside_any_practice_gets_a_friendly_page(client, db):
    client.force_login(UserFactory(username="outsider"))

    response = client.get(reverse("chat"))

    page = response.content.decode()
    assert response.status_code == 403
    assert "The chat is for practice members" in page
    assert "chat-composer" not in page


def test_a_former_member_gets_the_friendly_page_too(client, db):
    user = UserFactory(username="former")
    MembershipFactory(user=user, is_active=False)
    client.force_login(user)

    assert "The chat is for practice members" in client.get(reverse("chat")).content.decode()


def test_a_member_gets_the_page_with_an_empty_state(client, practice):
    client.force_login(practice.anna)

    response = client.get(reverse("chat"))

    page = response.content.decode()
    assert response.status_code == 200
    assert "No conversations yet." in page
    assert "New conversation" in page
    assert 'role="log"' in page and 'aria-live="polite"' in page
    assert 'role="status"' in page
    assert data_attribute(page, "conversation") == ""
    assert data_attribute(page, "last-seq") == "0"


def test_the_home_page_links_members_to_the_chat(client, practice):
    client.force_login(practice.anna)

    assert f'href="{reverse("chat")}"' in client.get(reverse("home")).content.decode()


def test_the_list_shows_the_users_own_conversations_newest_first(client, practice):
    older = conversation_start(user=practice.anna)
    say(older, "Give Tom view access")
    newer = conversation_start(user=practice.anna)
    say(newer, "Remove Léa from my surgery calendar")
    say(conversation_start(user=practice.ben), "Ben's own question")
    client.force_login(practice.anna)

    page = client.get(reverse("chat")).content.decode()

    assert page.index("Remove Léa from my surgery calendar") < page.index("Give Tom view access")
    assert "Ben&#x27;s own question" not in page and "Ben's own question" not in page
    assert "No conversations yet." in page  # the empty state is there, hidden, for the script
    assert re.search(r'id="chat-list-empty"[^>]* hidden', page)


# --- One conversation ----------------------------------------------------------------------------


def test_an_open_conversation_shows_its_history_and_last_seq(client, practice):
    conversation = conversation_start(user=practice.anna)
    say(conversation, "Give Tom view access", reply="Here is the change I can make.")
    client.force_login(practice.anna)

    response = client.get(reverse("chat-conversation", args=[conversation.pk]))

    page = response.content.decode()
    conversation.refresh_from_db()
    assert response.status_code == 200
    assert "Give Tom view access" in page
    assert "Here is the change I can make." in page
    assert data_attribute(page, "conversation") == str(conversation.pk)
    assert data_attribute(page, "last-seq") == str(conversation.last_seq)
    assert conversation.last_seq > 0
    assert 'aria-current="page"' in page


def test_someone_elses_conversation_is_not_found(client, practice):
    bens = conversation_start(user=practice.ben)
    say(bens, "Something private")
    client.force_login(practice.anna)

    response = client.get(reverse("chat-conversation", args=[bens.pk]))

    assert response.status_code == 404
    assert "Something private" not in response.content.decode()


def test_an_unknown_conversation_is_not_found(client, practice):
    client.force_login(practice.anna)

    assert client.get(reverse("chat-conversation", args=[987654])).status_code == 404


def test_the_history_is_rendered_as_text_never_as_html(client, practice):
    conversation = conversation_start(user=practice.anna)
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    say(conversation, hostile, reply="<b>not bold</b>")
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<b>not bold</b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page  # in the history and in the list
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page


def test_a_pending_proposal_is_rendered_with_its_fields_preselected(client, practice):
    conversation = conversation_start(user=practice.anna)
    message = say(conversation, "Give Tomas booking access to my surgery calendar")
    proposal_create(
        conversation_id=conversation.pk,
        message_id=message.pk,
        requested_by=practice.anna,
        action="grant",
        arguments={"calendar_id": practice.novak_surgery.pk, "user_id": practice.tomas.pk, "level": "book"},
        summary="Tomas Reyes will be able to book appointments in Dr Novak surgery",
        done="Done: Tomas Reyes can now book appointments in Dr Novak surgery.",
        before=None,
        fields={
            "member": {
                "value": practice.tomas.pk,
                "options": [
                    {"value": practice.tom.pk, "label": "Tom Fisher"},
                    {"value": practice.tomas.pk, "label": "Tomas Reyes"},
                ],
            },
            "calendar": {
                "value": practice.novak_surgery.pk,
                "options": [{"value": practice.novak_surgery.pk, "label": "Dr Novak surgery"}],
            },
            "level": {"value": "book", "options": [{"value": v, "label": v} for v in ("view", "book", "manage")]},
        },
    )
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    assert "Proposed change: give access" in page
    assert "Tomas Reyes will be able to book appointments in Dr Novak surgery" in page
    assert f'<option value="{practice.tomas.pk}" selected>Tomas Reyes</option>' in page
    assert '<option value="book" selected>Book</option>' in page
    assert 'data-decision="confirm"' in page and ">Confirm</button>" in page
    assert ">Reject</button>" in page
    assert "<fieldset>" in page  # not decided: the form can be used


def test_a_decided_proposal_shows_its_result_and_cannot_be_used(client, practice):
    conversation = conversation_start(user=practice.anna)
    message = say(conversation, "Give Tomas booking access")
    proposal = proposal_create(
        conversation_id=conversation.pk,
        message_id=message.pk,
        requested_by=practice.anna,
        action="grant",
        arguments={"calendar_id": practice.novak_surgery.pk, "user_id": practice.tomas.pk, "level": "book"},
        summary="Tomas Reyes will be able to book appointments in Dr Novak surgery",
        done="Done: Tomas Reyes can now book appointments in Dr Novak surgery.",
        before=None,
        fields={},
    )
    event_publish(
        conversation_id=conversation.pk,
        type="result",
        payload={
            "proposal": proposal.pk,
            "status": "executed",
            "code": "",
            "summary": proposal.summary,
            "done": proposal.done,
        },
    )
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    assert "<fieldset disabled>" in page
    assert proposal_result(page) == ("executed", "Done: Tomas Reyes can now book appointments in Dr Novak surgery.")


def test_a_result_stored_before_done_sentences_shows_its_summary(client, practice):
    """A result event stored before proposals had a done-sentence still says what was done."""
    conversation = conversation_start(user=practice.anna)
    message = say(conversation, "Give Tomas booking access")
    proposal = proposal_create(
        conversation_id=conversation.pk,
        message_id=message.pk,
        requested_by=practice.anna,
        action="grant",
        arguments={"calendar_id": practice.novak_surgery.pk, "user_id": practice.tomas.pk, "level": "book"},
        summary="Tomas Reyes will be able to book appointments in Dr Novak surgery",
        before=None,
        fields={},
    )
    event_publish(
        conversation_id=conversation.pk,
        type="result",
        payload={"proposal": proposal.pk, "status": "executed", "code": "", "summary": proposal.summary},
    )
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    assert proposal_result(page) == (
        "executed",
        "Done: Tomas Reyes will be able to book appointments in Dr Novak surgery",
    )


def test_a_question_offers_its_options_until_it_is_answered(client, practice):
    conversation = conversation_start(user=practice.anna)
    say(conversation, "Give Tom access to my calendar")
    options = [{"value": "view", "label": "view"}, {"value": "book", "label": "book"}]
    event_publish(
        conversation_id=conversation.pk,
        type="form",
        payload={"kind": "choice", "field": "level", "question": "Which access?", "options": options},
    )
    client.force_login(practice.anna)
    url = reverse("chat-conversation", args=[conversation.pk])

    open_question = client.get(url).content.decode()
    say(conversation, "book", client_id="client-answer")
    answered = client.get(url).content.decode()

    assert '<button type="button" data-label="book">Book</button>' in open_question
    assert '<button type="button" data-label="book" disabled>Book</button>' in answered


def test_the_script_gets_its_sentences_translated(client, practice):
    client.force_login(practice.anna)

    english = client.get(reverse("chat"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    french = client.get(reverse("chat"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    def strings(page):
        raw = re.search(r'<script id="chat-strings" type="application/json">(.*?)</script>', page, re.S).group(1)
        return json.loads(raw)

    assert strings(english)["proposal"]["confirm"] == "Confirm"
    assert strings(english)["connection"]["reconnecting"] == "Reconnecting…"
    assert strings(french)["proposal"]["confirm"] == "Confirmer"
    assert strings(french)["levels"] == {"view": "Consulter", "book": "Réserver", "manage": "Gérer"}
    assert strings(french)["states"]["waiting_confirmation"] == "En attente de votre confirmation."
    assert "Discuter avec Alfred" in french


# --- The list, page by page ------------------------------------------------------------------------


def test_the_list_is_paginated(client, practice):
    conversations = [
        Conversation.objects.create(user=practice.anna, organization=practice.org, title=f"Question {n:02d}")
        for n in range(PAGE_SIZE + 5)
    ]
    client.force_login(practice.anna)

    first = client.get(reverse("chat")).content.decode()
    second = client.get(reverse("chat"), {"page": 2}).content.decode()

    first_titles = re.findall(r"Question \d\d", first)
    second_titles = re.findall(r"Question \d\d", second)
    assert len(first_titles) == PAGE_SIZE
    assert len(second_titles) == 5
    assert first_titles[0] == "Question 34"  # newest first
    assert set(first_titles).isdisjoint(second_titles)
    assert 'href="?page=2" rel="next"' in first
    assert 'href="?page=1" rel="prev"' in second
    assert "Page 2 of 2" in second
    assert len(conversations) == PAGE_SIZE + 5


def test_a_page_out_of_range_shows_the_last_one(client, practice):
    Conversation.objects.create(user=practice.anna, organization=practice.org, title="Only one")
    client.force_login(practice.anna)

    assert "Only one" in client.get(reverse("chat"), {"page": 99}).content.decode()


# --- Queries ---------------------------------------------------------------------------------------


def queries_for(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_page_queries_do_not_grow_with_conversations_and_messages(client, practice, settings):
    settings.CHAT_TURNS_PER_MINUTE = 0  # 26 messages in a minute: no per-person limit for this one
    client.force_login(practice.anna)
    small = conversation_start(user=practice.anna)
    say(small, "One question", reply="One answer")
    few = queries_for(client, reverse("chat-conversation", args=[small.pk]))

    for n in range(40):
        Conversation.objects.create(user=practice.anna, organization=practice.org, title=f"Old {n}")
    big = conversation_start(user=practice.anna)
    for n in range(25):
        say(big, f"Question {n}", reply=f"Answer {n}", client_id=f"client-{n:04d}")
    many = queries_for(client, reverse("chat-conversation", args=[big.pk]))

    assert many == few
    assert few <= 7, few  # session, user, membership, count, page of the list, conversation, its events

    taken = conversation_start(user=practice.anna)
    say(taken, "A question for a person", client_id="client-person")
    take_over(taken, support_person())
    staff_says(taken, "Hello, I am looking at it.")
    assert queries_for(client, reverse("chat-conversation", args=[taken.pk])) == few + 1  # the assignee's name


# --- A person from support ---------------------------------------------------------------------------


def support_person(first="Sophie", last="Durand"):
    return UserFactory(username=f"{first.lower()}-support", first_name=first, last_name=last, platform_role="support")


def take_over(conversation, staff):
    """What the console's take-over leaves behind: the conversation is theirs, the member saw them join."""
    Conversation.objects.filter(pk=conversation.pk).update(status="with_staff", assignee=staff, run_status="idle")
    event_publish(
        conversation_id=conversation.pk,
        type="participant",
        payload={"action": "joined", "name": staff.display_name, "role": "support"},
    )
    event_publish(
        conversation_id=conversation.pk, type="status", payload={"state": "with_staff", "text": staff.display_name}
    )


def staff_says(conversation, text, name="Sophie Durand", message_id=9001):
    event_publish(
        conversation_id=conversation.pk,
        type="message",
        payload={
            "message": {
                "author": {"name": name, "role": "support"},
                "id": message_id,
                "role": "staff",
                "text": text,
                "status": "complete",
                "client_id": "",
                "reply_to": None,
                "citations": [],
                "created_at": "2026-12-05T10:00:00+00:00",
            }
        },
    )


def status_line(page: str) -> str:
    return re.search(r'<span id="chat-status-text">([^<]*)</span>', page).group(1)


def test_a_staff_message_shows_its_author_and_the_person_joining(client, practice):
    conversation = conversation_start(user=practice.anna)
    say(conversation, "Can a person help me?", reply="I have passed you to the support team.")
    take_over(conversation, support_person())
    staff_says(conversation, "Hello Anna, I am looking at your calendars.")
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    staff = re.search(r'<div class="msg msg-staff" data-message-id="9001" data-seq="(\d+)">(.*?)</div>', page).group(2)
    assert '<p class="msg-author">Sophie Durand · Support</p>' in staff
    assert '<p class="msg-text">Hello Anna, I am looking at your calendars.</p>' in staff
    joined = re.search(r'<p class="chat-system" data-seq="\d+" data-action="joined">([^<]*)</p>', page).group(1)
    assert joined == "Sophie Durand from the support team joined the conversation."
    assert page.index("I have passed you to the support team.") < page.index(joined) < page.index("Hello Anna")
    assert data_attribute(page, "conversation-status") == "with_staff"
    assert data_attribute(page, "assignee") == "Sophie Durand"
    assert status_line(page) == "Sophie Durand from support is answering you."
    assert '<label for="chat-input" id="chat-input-label">Your message to support</label>' in page
    assert re.search(r'<div id="chat-handoff" class="chat-notice" hidden>', page)  # nobody is waiting any more


def test_the_person_leaving_is_a_line_and_alfred_answers_again(client, practice):
    conversation = conversation_start(user=practice.anna)
    say(conversation, "Can a person help me?")
    sophie = support_person()
    take_over(conversation, sophie)
    event_publish(
        conversation_id=conversation.pk,
        type="participant",
        payload={"action": "left", "name": "Sophie Durand", "role": "support"},
    )
    event_publish(
        conversation_id=conversation.pk, type="status", payload={"state": "idle", "text": ""}, run_status="idle"
    )
    Conversation.objects.filter(pk=conversation.pk).update(status="open", assignee=None)
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    lines = re.findall(r'<p class="chat-system" data-seq="\d+" data-action="(\w+)">([^<]*)</p>', page)
    assert lines == [
        ("joined", "Sophie Durand from the support team joined the conversation."),
        ("left", "Sophie Durand left the conversation. Alfred answers again."),
    ]
    assert data_attribute(page, "conversation-status") == "open"
    assert status_line(page) == ""
    assert '<label for="chat-input" id="chat-input-label">Your message to Alfred</label>' in page


def test_a_conversation_waiting_for_a_person_offers_back_to_alfred(client, practice):
    conversation = conversation_start(user=practice.anna)
    say(conversation, "I want to talk to a person", reply="I've passed this conversation to the support team.")
    event_publish(conversation_id=conversation.pk, type="status", payload={"state": "handed_off", "text": ""})
    Conversation.objects.filter(pk=conversation.pk).update(status="handed_off", run_status="idle")
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    notice = re.search(r'<div id="chat-handoff" class="chat-notice">(.*?)</div>', page, re.S).group(1)
    assert "No longer need a person? Alfred can answer you again." in notice
    assert '<button type="button" id="chat-cancel-handoff">Back to Alfred</button>' in notice
    assert data_attribute(page, "conversation-status") == "handed_off"
    assert status_line(page) == "Waiting for a person from support. Your messages are kept for them."
    assert re.search(r'<p id="chat-status" class="chat-status" role="status" data-state="handed_off">', page)
    assert re.search(r'<textarea id="chat-input"[^>]*></textarea>', page).group(0).count("disabled") == 0


def test_an_open_conversation_has_no_back_to_alfred_notice(client, practice):
    conversation = conversation_start(user=practice.anna)
    say(conversation, "Give Tom view access", reply="Here is the change.")
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    assert '<div id="chat-handoff" class="chat-notice" hidden>' in page  # there for the script, hidden
    assert data_attribute(page, "conversation-status") == "open"
    assert data_attribute(page, "assignee") == ""


def test_a_closed_conversation_cannot_be_written_to(client, practice):
    conversation = conversation_start(user=practice.anna)
    options = [{"value": "view", "label": "view"}, {"value": "book", "label": "book"}]
    say(conversation, "Give Tom access")
    event_publish(
        conversation_id=conversation.pk,
        type="form",
        payload={"kind": "choice", "field": "level", "question": "Which access?", "options": options},
    )
    event_publish(conversation_id=conversation.pk, type="status", payload={"state": "closed", "text": ""})
    Conversation.objects.filter(pk=conversation.pk).update(status="closed", run_status="idle")
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    closed = "This conversation is closed. Start a new conversation to ask something else."
    assert status_line(page) == closed
    assert data_attribute(page, "conversation-status") == "closed"
    assert re.search(r'<textarea id="chat-input"[^>]* disabled></textarea>', page)
    assert '<button type="submit" class="primary" id="chat-send" disabled>Send</button>' in page
    assert re.search(r'<p id="chat-input-hint" class="chat-hint" hidden>', page)
    assert f'<p id="chat-closed" class="chat-closed"><a class="button" href="{reverse("chat")}">' in page
    assert '<button type="button" data-label="book" disabled>Book</button>' in page  # nothing left to answer


def test_a_closed_conversation_says_so_in_french(client, practice):
    conversation = conversation_start(user=practice.anna)
    say(conversation, "Une question")
    take_over(conversation, support_person())
    staff_says(conversation, "Bonjour Anna.")
    Conversation.objects.filter(pk=conversation.pk).update(status="closed", assignee=None)
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk]), HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    assert "Sophie Durand, de l’équipe support, a rejoint la conversation." in page
    assert '<p class="msg-author">Sophie Durand · Support</p>' in page
    assert (
        status_line(page)
        == "Cette conversation est fermée. Commencez une nouvelle conversation pour toute autre demande."
    )


def proposal_for(practice, conversation, text="Give Tom manage access to my surgery calendar"):
    message = say(conversation, text)
    return proposal_create(
        conversation_id=conversation.pk,
        message_id=message.pk,
        requested_by=practice.anna,
        action="grant",
        arguments={"calendar_id": practice.novak_surgery.pk, "user_id": practice.tom.pk, "level": "manage"},
        summary="Tom Fisher will be able to manage Dr Novak surgery, including who has access to it",
        done="Done: Tom Fisher can now manage Dr Novak surgery (including who has access to it).",
        before=None,
        fields={},
    )


def publish_result(conversation, proposal, status, code="", **extra):
    event_publish(
        conversation_id=conversation.pk,
        type="result",
        payload={
            "proposal": proposal.pk,
            "status": status,
            "code": code,
            "summary": proposal.summary,
            "done": proposal.done,
            **extra,
        },
    )


def proposal_result(page: str) -> tuple[str, str]:
    form = re.search(r'<form class="chat-form chat-proposal"[^>]* data-status="(\w+)"(.*?)</form>', page, re.S)
    return form.group(1), re.search(r'<p class="proposal-result" tabindex="-1">([^<]*)</p>', form.group(2)).group(1)


def test_a_proposal_waiting_for_approval_says_so_and_cannot_be_used(client, practice):
    conversation = conversation_start(user=practice.anna)
    proposal = proposal_for(practice, conversation)
    publish_result(conversation, proposal, "awaiting_approval", reasons=["manage_grant"])
    event_publish(
        conversation_id=conversation.pk,
        type="status",
        payload={"state": "waiting_approval", "text": ""},
        run_status="waiting_approval",
    )
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    assert proposal_result(page) == (
        "awaiting_approval",
        "Confirmed. The support team must approve this change before it is made.",
    )
    assert "<fieldset disabled>" in page
    assert status_line(page) == "Waiting for approval by the support team."


def test_a_refused_proposal_shows_the_latest_result_with_the_reason(client, practice):
    conversation = conversation_start(user=practice.anna)
    proposal = proposal_for(practice, conversation)
    publish_result(conversation, proposal, "awaiting_approval", reasons=["manage_grant", "delegated_manager"])
    publish_result(
        conversation, proposal, "rejected", "refused", reason="Tom <b>must</b> ask Dr Novak.", reviewer="Sophie Durand"
    )
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    assert proposal_result(page) == (
        "rejected",
        "Not approved by support: Tom &lt;b&gt;must&lt;/b&gt; ask Dr Novak. Nothing was changed.",
    )
    log = page[page.index('id="chat-log"') : page.index('id="chat-status"')]
    assert "Confirmed. The support team must approve" not in log  # the later result replaced it
    assert "<fieldset disabled>" in page


def test_an_approved_then_executed_proposal_shows_it_was_done(client, practice):
    conversation = conversation_start(user=practice.anna)
    proposal = proposal_for(practice, conversation)
    url = reverse("chat-conversation", args=[conversation.pk])
    client.force_login(practice.anna)
    publish_result(conversation, proposal, "awaiting_approval", reasons=["manage_grant"])
    publish_result(conversation, proposal, "confirmed", "approved", reviewer="Sophie Durand")

    approved = client.get(url).content.decode()
    publish_result(conversation, proposal, "executed")
    executed = client.get(url).content.decode()

    assert proposal_result(approved) == ("confirmed", "Approved by Sophie Durand. Making the change…")
    assert proposal_result(executed) == (
        "executed",
        "Done: Tom Fisher can now manage Dr Novak surgery (including who has access to it).",
    )


@pytest.mark.parametrize(
    ("result", "sentence"),
    [
        ({"status": "awaiting_approval", "reasons": ["manage_grant"]}, "Confirmed. The support team must approve"),
        ({"status": "confirmed", "code": "approved", "reviewer": "Sophie"}, "Approved by Sophie. Making the change…"),
        (
            {"status": "rejected", "code": "refused", "reason": "Ask Dr Novak.", "reviewer": "Sophie"},
            "Not approved by support: Ask Dr Novak. Nothing was changed.",
        ),
        ({"status": "rejected", "code": ""}, "Rejected: nothing was changed."),
        ({"status": "expired", "code": "taken_over"}, "Set aside: a person from support took over. Nothing was"),
        ({"status": "expired", "code": "handed_back"}, "Set aside when the conversation went back to Alfred."),
        ({"status": "expired", "code": "closed"}, "Set aside: the conversation was closed. Nothing was changed."),
        ({"status": "expired", "code": "set_aside"}, "Set aside for your newer request"),
        ({"status": "expired", "code": "expired"}, "Expired: nothing was changed."),
        ({"status": "failed", "code": "state_changed"}, "Not done: the access changed in the meantime."),
    ],
)
def test_each_result_has_its_sentence(result, sentence):
    assert result_text(result, chat_strings()).startswith(sentence)


def test_the_new_sentences_are_translated(client, practice):
    client.force_login(practice.anna)

    page = client.get(reverse("chat"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    raw = re.search(r'<script id="chat-strings" type="application/json">(.*?)</script>', page, re.S).group(1)
    strings = json.loads(raw)
    assert strings["roles"]["support"] == "Support"
    assert strings["participant"]["left"] == "{name} a quitté la conversation. Alfred vous répond de nouveau."
    assert strings["states"]["handed_off"].startswith("En attente d’une personne du support.")
    assert strings["states"]["with_staff"] == "{name}, du support, vous répond."
    assert strings["errors"]["rate_limited"].startswith(
        "Vous envoyez beaucoup de messages. Patientez {seconds} secondes"
    )
    assert "{seconds} seconde," in strings["errors"]["rate_limited_one"]
    assert strings["result"]["refused"] == "Refusée par le support\u00a0: {reason}. Rien n’a été modifié."
    assert "Revenir à Alfred" in page


# --- Sources of an answer from the knowledge base ---------------------------------------------------------


def answer_with(conversation, citations, question="What can I do with Book permission?", text="Book lets them [1]."):
    message = say(conversation, question)
    ReplyWriter(conversation_id=conversation.pk, turn_key=f"message:{message.pk}", reply_to_id=message.pk).finish(
        text=text, citations=citations
    )


def sources_box(page: str) -> str:
    return re.search(r'<div class="msg-sources">.*?</ol></div>', page).group(0)


def test_an_answers_sources_are_shown_after_a_reload_as_the_script_shows_them(client, practice):
    conversation = conversation_start(user=practice.anna)
    answer_with(
        conversation,
        [
            {
                "n": 1,
                "slug": "calendar-permissions",
                "title": "Calendar permissions explained",
                "heading": "Calendar permissions explained › Levels › Book",
                "chunk_id": 11,
                "url": "/kb/calendar-permissions/",
            },
            {"n": 2, "slug": "change-password", "title": "", "heading": "Change your password", "url": "/kb/x/"},
        ],
        text="Book lets them add appointments [1]. See also [2].",
    )
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    # The markup chat.js's renderSources builds: the box between the text and the note, "[n] Title" linking to
    # the article's page, " — Section" (the heading without the article's title); no title: the slug.
    assert sources_box(page) == (
        '<div class="msg-sources"><p class="msg-sources-title">Sources</p><ol class="msg-sources-list">'
        '<li value="1"><a href="/kb/calendar-permissions/" target="_blank" rel="noopener">'
        "[1] Calendar permissions explained</a>"
        '<span class="msg-sources-section"> — Levels › Book</span></li>'
        '<li value="2"><a href="/kb/x/" target="_blank" rel="noopener">[2] change-password</a></li>'
        "</ol></div>"
    )
    assert re.search(
        r'<p class="msg-text">Book lets them add appointments \[1\]\. See also \[2\]\.</p>'
        r'<div class="msg-sources">.*?</div><p class="msg-note"></p></div>',
        page,
    )
    assert page.count('class="msg-sources"') == 1  # the question and other messages have none


def test_a_hostile_title_stays_text_and_only_this_sites_paths_are_links(client, practice):
    conversation = conversation_start(user=practice.anna)
    hostile = '<img src=x onerror="alert(1)">Phone robot'
    answer_with(
        conversation,
        [
            {"n": 1, "slug": "phone-robot", "title": hostile, "heading": f"{hostile} › <b>Setup</b>", "url": "/kb/p/"},
            {"n": 2, "slug": "a", "title": "Off site", "heading": "Off site", "url": "https://evil.example/kb/a/"},
            {"n": 3, "slug": "b", "title": "Other host", "heading": "Other host", "url": "//evil.example/kb/b/"},
            {"n": 4, "slug": "c", "title": "Backslash", "heading": "Backslash", "url": "/\\evil.example/kb/c/"},
            {"n": 5, "slug": "d", "title": "Script", "heading": "Script", "url": "javascript:alert(1)"},
            {"n": 6, "slug": "e", "title": "No url", "heading": "No url"},
        ],
    )
    client.force_login(practice.anna)

    box = sources_box(client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode())

    assert "<img" not in box and "<b>" not in box
    assert (
        '<li value="1"><a href="/kb/p/" target="_blank" rel="noopener">'
        "[1] &lt;img src=x onerror=&quot;alert(1)&quot;&gt;Phone robot</a>"
        '<span class="msg-sources-section"> — &lt;b&gt;Setup&lt;/b&gt;</span></li>'
    ) in box
    assert re.findall(r"<a href=\"([^\"]*)\"", box) == ["/kb/p/"]  # the only link
    for number, title in [(2, "Off site"), (3, "Other host"), (4, "Backslash"), (5, "Script"), (6, "No url")]:
        assert f'<li value="{number}"><span>[{number}] {title}</span></li>' in box
    assert "evil.example" not in box and "javascript:" not in box


def test_messages_without_citations_have_no_sources(client, practice):
    conversation = conversation_start(user=practice.anna)
    say(conversation, "Give Tom view access", reply="Here is the change I can make.")
    client.force_login(practice.anna)

    page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    assert "msg-sources" not in page


# --- The welcome's examples ----------------------------------------------------------------------------------


def examples(page: str) -> list[str]:
    return re.findall(r'<button type="button" class="chat-example">([^<]*)</button>', page)


def test_the_examples_name_the_members_own_colleague_and_calendar(client, practice):
    client.force_login(practice.anna)

    page = client.get(reverse("chat")).content.decode()

    # Anna's first calendar by name, and a colleague of her practice who has no access to it yet (Tom can view it).
    assert examples(page) == [
        "Give Léa Girard booking access to Dr Novak appointments",
        "How do I cancel an appointment?",  # no help article is published: the first how-to question
    ]
    assert "Give Tom booking access to my surgery calendar" not in page
    assert "Iris" not in page and "Walsh" not in page and "Northside" not in page
    assert "For example (select one to send it):" in page


def test_the_examples_are_in_french_for_a_french_member(client, practice):
    client.force_login(practice.anna)

    page = client.get(reverse("chat"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    assert examples(page) == [
        "Donne à Léa Girard l’accès en réservation à Dr Novak appointments",
        "Comment annuler un rendez-vous\u00a0?",
    ]
    assert "Par exemple (choisissez-en un pour l’envoyer)\u00a0:" in page
    assert "Vous pouvez aussi demander comment faire quelque chose" in page


def test_a_manager_gets_a_calendar_they_manage_and_never_its_owner_as_colleague(client, practice):
    client.force_login(practice.lea)  # manages Dr Okafor appointments (Ben's), owns none

    page = client.get(reverse("chat")).content.decode()

    # The first colleague by name who is neither Léa nor Ben, the calendar's owner.
    assert examples(page)[0] == "Give Tom Fisher booking access to Dr Okafor appointments"
    assert "Ben Okafor" not in page


def test_without_a_calendar_to_manage_the_example_asks_a_question(client, practice):
    client.force_login(practice.tom)  # may view Anna's calendar, owns or manages none

    page = client.get(reverse("chat")).content.decode()

    assert examples(page)[0] == "Who can give permissions on a calendar?"
    assert "booking access" not in page


def test_alone_in_a_practice_the_example_names_nobody_of_another_one(client, practice):
    client.force_login(practice.iris)  # owns Dr Walsh clinic, the only member of Northside

    page = client.get(reverse("chat")).content.decode()

    assert examples(page)[0] == "Who can give permissions on a calendar?"
    for name in ("Anna", "Novak", "Léa", "Ben", "Tom", "Harbour"):
        assert name not in page


def test_former_colleagues_are_never_named(client, practice):
    for user in (practice.lea, practice.ben):
        user.memberships.update(is_active=False)
    practice.tomas.is_active = False
    practice.tomas.save(update_fields=["is_active"])
    client.force_login(practice.anna)

    # Léa and Ben left the practice and Tomas's account is closed: Tom (who can view the calendar) is left.
    assert examples(client.get(reverse("chat")).content.decode())[0] == (
        "Give Tom Fisher booking access to Dr Novak appointments"
    )


def test_the_how_to_example_is_one_a_published_article_answers_in_the_members_language(client, practice):
    from tests.factories import article_published

    article_published(
        "sms-email-reminders",
        "Appointment reminders by SMS and email",
        "Reminders are sent by SMS and email. Set them up in Settings > Reminders.",
    )
    article_published(
        "annuler-deplacer-rendez-vous",
        "Annuler ou déplacer un rendez-vous",
        "Pour annuler un rendez-vous, ouvrez-le et cliquez sur « Annuler le rendez-vous ».",
        language="fr",
    )
    client.force_login(practice.anna)

    english = client.get(reverse("chat")).content.decode()
    french = client.get(reverse("chat"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()

    assert examples(english)[1] == "How do I set up SMS reminders?"  # the cancelling article is in French
    assert examples(french)[1] == "Comment annuler un rendez-vous\u00a0?"


def test_a_conversation_with_history_has_no_examples_and_no_extra_queries(client, practice):
    conversation = conversation_start(user=practice.anna)
    say(conversation, "Give Tom view access", reply="Here is the change I can make.")
    client.force_login(practice.anna)

    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("chat-conversation", args=[conversation.pk])).content.decode()

    assert examples(page) == []
    assert not any("knowledge_article" in query["sql"] for query in queries.captured_queries)
