"""The support console's pages (/console/), through Django's test client: who may open them, the inbox's
states, filters, search, pagination and query counts, a conversation's transcript with the agent trace, the
approval queue, and the staff actions answering with a message (never an error page) when refused."""

import re
from html import unescape
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from agents.models import AgentRun
from support.models import ActionProposal, Conversation, Message
from support.services.chat import conversation_start, message_receive
from support.services.handoff import conversation_hand_off, conversation_take_over
from support.services.proposals import proposal_decide
from tests.factories import UserFactory
from tests.support.console_data import conversation_of, proposal_in

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _quiet(settings):
    settings.CHAT_TURNS_PER_MINUTE = 0  # no limit: these tests write many messages for one person
    settings.CHAT_CONVERSATIONS_PER_HOUR = 0
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def staff():
    return UserFactory(username="sophie", first_name="Sophie", last_name="Durand", platform_role="support")


@pytest.fixture
def console(client, staff):
    client.force_login(staff)
    return client


def text_of(response) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.content.decode())))


def conversation_with(member, text="Hello", *, handed_off=False):
    conversation = conversation_start(user=member)
    with mock.patch("support.tasks.run_turn.delay"):
        message_receive(conversation=conversation, client_id=f"client-{Message.objects.count() + 1:04}", text=text)
    if handed_off:
        conversation_hand_off(conversation_id=conversation.pk, member=member)
    conversation.refresh_from_db()
    return conversation


# --- Who may open it -------------------------------------------------------------------------------------------


def test_the_console_is_for_support_staff_only(client, practice, staff):
    assert client.get(reverse("console:inbox")).status_code == 302  # anonymous: to the login page
    assert reverse("login") in client.get(reverse("console:inbox"))["Location"]
    client.force_login(practice.anna)
    for url in (reverse("console:inbox"), reverse("console:approvals")):
        response = client.get(url)
        assert response.status_code == 403
        assert "This page is for support staff" in text_of(response)
    conversation = conversation_with(practice.anna)
    assert client.get(reverse("console:conversation", args=[conversation.pk])).status_code == 403
    assert client.post(reverse("console:take-over", args=[conversation.pk])).status_code == 403
    conversation.refresh_from_db()
    assert conversation.status == Conversation.Status.OPEN


def test_compliance_officers_are_not_support_staff(client):
    client.force_login(UserFactory(platform_role="compliance"))
    assert client.get(reverse("console:inbox")).status_code == 403


# --- The inbox ---------------------------------------------------------------------------------------------------


def test_an_empty_inbox_says_what_will_appear_there(console):
    response = console.get(reverse("console:inbox"))
    assert response.status_code == 200
    assert "Nobody is waiting for a person." in text_of(response)
    assert "When a member asks Alfred for a person, the conversation appears here at once." in text_of(response)


def test_the_inbox_lists_conversations_by_state_oldest_wait_first(console, practice):
    first = conversation_with(practice.anna, "I need a person", handed_off=True)
    second = conversation_with(practice.ben, "A human please", handed_off=True)
    active = conversation_with(practice.tom, "Give Tomas view access")
    waiting = text_of(console.get(reverse("console:inbox")))
    assert waiting.index("Anna Novak") < waiting.index("Ben Okafor")  # Anna has waited longer
    assert "Tom Fisher" not in waiting
    assert "Waiting for a person 2" in waiting and "With Alfred 1" in waiting
    with_alfred = text_of(console.get(reverse("console:inbox"), {"state": "open"}))
    assert "Tom Fisher" in with_alfred and "Anna Novak" not in with_alfred
    assert {first.pk, second.pk, active.pk} <= set(Conversation.objects.values_list("pk", flat=True))


def test_the_inbox_filters_by_practice_language_and_searches_names_and_text(console, practice):
    conversation_with(practice.anna, "Where are my SMS reminders?", handed_off=True)
    conversation_with(practice.iris, "Bonjour, une personne svp", handed_off=True)
    Conversation.objects.filter(user=practice.iris).update(language="fr")
    url = reverse("console:inbox")
    by_practice = text_of(console.get(url, {"organization": practice.other_org.pk}))
    assert "Iris Walsh" in by_practice and "Anna Novak" not in by_practice
    by_language = text_of(console.get(url, {"language": "fr"}))
    assert "Iris Walsh" in by_language and "Anna Novak" not in by_language
    by_name = text_of(console.get(url, {"q": "novak"}))
    assert "Anna Novak" in by_name and "Iris Walsh" not in by_name
    by_text = text_of(console.get(url, {"q": "sms reminders"}))
    assert "Anna Novak" in by_text and "Iris Walsh" not in by_text
    nothing = text_of(console.get(url, {"q": "no such words anywhere"}))
    assert "No conversation matches these filters." in nothing


def test_the_inbox_reads_a_fixed_number_of_queries_and_paginates(console, practice):
    conversation_with(practice.anna, "First", handed_off=True)
    url = reverse("console:inbox")
    with CaptureQueriesContext(connection) as one:
        console.get(url)
    members = [UserFactory() for _ in range(26)]
    for member in members:
        from tests.factories import MembershipFactory

        MembershipFactory(user=member, organization=practice.org, role="assistant")
        conversation_with(member, "Please, a person", handed_off=True)
    with CaptureQueriesContext(connection) as many:
        first = console.get(url)
    assert len(many) == len(one), [q["sql"] for q in many.captured_queries]
    assert len(many) <= 9  # session, user, tab counts, page count, page rows, practices for the filter…
    assert "Page 1 of 2" in text_of(first)
    assert "Page 2 of 2" in text_of(console.get(url, {"page": 2}))


def test_the_inbox_shows_how_long_each_has_waited(console, practice):
    conversation = conversation_with(practice.anna, "A person please", handed_off=True)
    from datetime import timedelta

    earlier = conversation.handed_off_at - timedelta(minutes=7)
    Conversation.objects.filter(pk=conversation.pk).update(handed_off_at=earlier)
    assert "7 minutes" in text_of(console.get(reverse("console:inbox")))


def test_the_inbox_in_french(console, practice):
    conversation_with(practice.anna, "Une personne", handed_off=True)
    console.post(reverse("set_language"), {"language": "fr"})
    page = text_of(console.get(reverse("console:inbox")))
    assert "En attente d’une personne" in page or "En attente d'une personne" in page


# --- A conversation --------------------------------------------------------------------------------------------


def test_a_transcript_shows_messages_and_the_agent_trace(console, practice):
    conversation = conversation_with(practice.anna, "How do I set up SMS reminders?")
    message = Message.objects.get(conversation=conversation)
    AgentRun.objects.create(
        conversation_id=conversation.pk,
        message_id=message.pk,
        status="done",
        intent="knowledge",
        outcome="answered",
        path=["triage", "retrieve", "answer", "fact_check"],
        steps=[{"node": "triage", "ms": 3.2}, {"node": "retrieve", "ms": 40.5}, {"node": "answer", "ms": 120.0}],
        usage=[
            {"step": "answer", "model": "gpt-test", "prompt_tokens": 310, "completion_tokens": 42, "latency_ms": 90}
        ],
        retrieval=[{"chunk": 7, "article": "sms-reminders", "score": 0.0321, "similarity": 0.61}],
    )
    page = text_of(console.get(reverse("console:conversation", args=[conversation.pk])))
    assert "How do I set up SMS reminders?" in page
    assert "Agent run: knowledge → answered" in page
    assert "retrieve 40.5 ms" in page
    assert "gpt-test — 310 tokens in, 42 out" in page
    assert "sms-reminders" in page and "similarity 0.610" in page


def test_reading_a_transcript_is_recorded_once_per_page_not_per_live_refresh(console, practice, staff):
    from governance.models import AuditRead

    conversation = conversation_of(practice.anna)
    url = reverse("console:conversation", args=[conversation.pk])
    console.get(url)
    console.get(url, {"live": 1})  # the open page re-reading its live part

    (read,) = AuditRead.objects.all()
    assert (read.user, read.what, read.target) == (staff, "transcript", f"conversation {conversation.pk}")
    assert read.reason == "support console, conversation state: With Alfred"


def test_a_transcript_shows_a_proposal_and_its_whole_lifecycle(console, practice):
    conversation = _awaiting(practice).conversation
    page = text_of(console.get(reverse("console:conversation", args=[conversation.pk])))
    assert "Tomas Reyes will be able to manage Dr Novak surgery, including who has access to it" in page
    assert "propose · Anna Novak" in page and "confirm · Anna Novak" in page
    assert "Needs approval because it gives manage access." in page
    assert f'"calendar_id": {practice.novak_surgery.pk}' in page


def test_a_conversation_page_reads_a_fixed_number_of_queries(console, practice):
    conversation = conversation_with(practice.anna, "Hello")
    url = reverse("console:conversation", args=[conversation.pk])
    with CaptureQueriesContext(connection) as few:
        console.get(url)
    with mock.patch("support.tasks.run_turn.delay"):
        for n in range(10):
            message_receive(conversation=conversation, client_id=f"more-{n:04}", text=f"Message {n}")
            AgentRun.objects.create(conversation_id=conversation.pk, message_id=Message.objects.last().pk)
    with CaptureQueriesContext(connection) as many:
        console.get(url)
    assert len(many) == len(few)


def test_an_unknown_conversation_is_a_404(console):
    assert console.get(reverse("console:conversation", args=[999999])).status_code == 404


def test_take_over_reply_and_a_colleague_told_who_has_it(client, console, practice, staff):
    conversation = conversation_with(practice.anna, "A person please", handed_off=True)
    url = reverse("console:conversation", args=[conversation.pk])
    response = console.post(reverse("console:take-over", args=[conversation.pk]), follow=True)
    assert "You have taken this conversation over" in text_of(response)
    reply = console.post(
        reverse("console:reply", args=[conversation.pk]),
        {"text": "Hello Anna, I'm here.", "client_id": "staff-0001"},
        HTTP_ACCEPT="application/json",
    )
    assert reply.status_code == 200
    assert "Hello Anna, I'm here." in text_of(console.get(url))

    colleague = UserFactory(first_name="Max", last_name="Mercier", platform_role="support")
    client.force_login(colleague)
    refused = client.post(reverse("console:take-over", args=[conversation.pk]), follow=True)
    assert refused.status_code == 200
    assert "Sophie Durand has already taken this conversation over." in text_of(refused)
    not_theirs = client.post(
        reverse("console:reply", args=[conversation.pk]), {"text": "Me too"}, HTTP_ACCEPT="application/json"
    )
    assert not_theirs.status_code == 409 and not_theirs.json()["code"] == "not_yours"


def test_an_empty_reply_is_refused_and_nothing_is_stored(console, practice, staff):
    conversation = conversation_with(practice.anna, "A person", handed_off=True)
    conversation_take_over(staff=staff, conversation_id=conversation.pk)
    response = console.post(
        reverse("console:reply", args=[conversation.pk]), {"text": "   "}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400 and response.json()["code"] == "empty_message"
    assert not Message.objects.filter(conversation=conversation, role="staff").exists()


# --- Approvals ---------------------------------------------------------------------------------------------------


def _awaiting(practice):
    """Anna's confirmed grant of manage to Tomas, waiting for staff approval (the default policy)."""
    conversation = conversation_with(practice.anna, "Make Tomas a manager of my surgery calendar")
    proposal = proposal_in(
        conversation, calendar=practice.novak_surgery, member=practice.tomas, level="manage", before=None
    )
    digest = proposal.arguments_hash
    return proposal_decide(user=practice.anna, proposal_id=proposal.pk, hash=digest, decision="confirm")


def test_the_approval_queue_lists_what_waits_and_approves_it(console, practice, django_capture_on_commit_callbacks):
    assert "No change waits for approval." in text_of(console.get(reverse("console:approvals")))
    proposal = _awaiting(practice)
    page = text_of(console.get(reverse("console:approvals")))
    assert "Tomas Reyes will be able to manage Dr Novak surgery, including who has access to it" in page
    assert "Anna Novak · Harbour Dental Practice" in page
    assert "Before No access After Manage" in page  # the levels as the member's form names them
    assert "Waiting for approval 1" in text_of(console.get(reverse("console:inbox")))
    with mock.patch("support.tasks.run_decision.delay") as run, django_capture_on_commit_callbacks(execute=True):
        response = console.post(
            reverse("console:approve", args=[proposal.pk]), {"hash": proposal.arguments_hash}, follow=True
        )
    assert "Approved: the change is being made for the member." in text_of(response)
    run.assert_called_once()
    proposal.refresh_from_db()
    assert proposal.status == ActionProposal.Status.CONFIRMED


def test_a_stale_form_or_a_missing_reason_is_told_on_the_page(console, practice):
    proposal = _awaiting(practice)
    stale = console.post(reverse("console:approve", args=[proposal.pk]), {"hash": "0" * 64}, follow=True)
    assert "This form no longer matches the proposal; reload it." in text_of(stale)
    no_reason = console.post(
        reverse("console:refuse", args=[proposal.pk]), {"hash": proposal.arguments_hash, "reason": " "}, follow=True
    )
    assert "Say why you reject it" in text_of(no_reason)
    proposal.refresh_from_db()
    assert proposal.status == ActionProposal.Status.AWAITING_APPROVAL


def test_a_redirect_back_never_leaves_the_site(console, practice):
    proposal = _awaiting(practice)
    response = console.post(
        reverse("console:refuse", args=[proposal.pk]),
        {"hash": proposal.arguments_hash, "reason": "Ask the practice owner", "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("console:approvals")


def test_settings_default_policy_is_documented():
    assert settings.STAFF_APPROVAL_RULES == ["manage_grant", "delegated_manager"]
