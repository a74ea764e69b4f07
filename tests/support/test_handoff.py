"""Who answers a conversation: hand-off to a person, take-over by staff (one owner, after any running turn),
staff replies, hand-back to Alfred with a clean memory, close. Through the services, on the real database."""

import contextlib
import threading
from unittest import mock

import pytest
from auditlog.models import LogEntry
from django.db import connection, connections

from agents.models import AgentRun
from governance.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from support.models import ActionProposal, Conversation, Message
from support.services.chat import TURN_LOCK_NAMESPACE, message_receive
from support.services.handoff import (
    conversation_close,
    conversation_hand_back,
    conversation_hand_off,
    conversation_hand_off_cancel,
    conversation_take_over,
    staff_message_send,
)
from support.services.proposals import proposal_approve, proposal_decide, proposal_refuse
from support.tasks import run_turn
from tests.factories import UserFactory
from tests.support.console_data import (
    conversation_of,
    decisions,
    events_of,
    proposal_in,
    proposal_status,
    rate_limits_reset,
    support_staff,
)

Status = Conversation.Status


@pytest.fixture(autouse=True)
def _fresh_counters():
    rate_limits_reset()
    yield
    rate_limits_reset()


@pytest.fixture
def staff(db):
    return support_staff()


@pytest.fixture
def other_staff(db):
    return support_staff("marc", "Marc", "Lefort")


@pytest.fixture
def conversation(practice):
    return conversation_of(practice.anna)


@pytest.fixture
def queued_turns(monkeypatch):
    """run_turn.delay, recorded instead of sent to the broker."""
    calls = mock.Mock()
    monkeypatch.setattr(run_turn, "delay", calls)
    return calls


@pytest.fixture
def in_process_tasks(monkeypatch):
    """Tasks applied here, inside the test's transaction. Around each task the app closes connections that are
    obsolete, and one inside a transaction counts as such: not here (as Django's test client does for requests)."""
    monkeypatch.setattr("django.db.close_old_connections", lambda **kwargs: None)


def refreshed(conversation: Conversation) -> Conversation:
    conversation.refresh_from_db()
    return conversation


def handed_off(conversation: Conversation) -> Conversation:
    assert conversation_hand_off(conversation_id=conversation.pk, member=conversation.user)
    return refreshed(conversation)


def taken_over(conversation: Conversation, staff) -> Conversation:
    conversation_take_over(staff=staff, conversation_id=conversation.pk)
    return refreshed(conversation)


def say(conversation: Conversation, text: str, client_id: str):
    return message_receive(conversation=refreshed(conversation), client_id=client_id, text=text)


def last_log(conversation: Conversation) -> LogEntry:
    return LogEntry.objects.get_for_object(conversation).order_by("-pk").first()


# --- Hand-off: the member asks for a person ----------------------------------------------------------------


def test_hand_off_waits_for_a_person_and_is_audited_with_the_member(practice, conversation):
    assert conversation_hand_off(conversation_id=conversation.pk, member=practice.anna) is True

    conversation.refresh_from_db()
    assert conversation.status == Status.HANDED_OFF
    assert conversation.handed_off_at is not None
    assert conversation.assignee is None
    entry = last_log(conversation)
    assert entry.actor == practice.anna
    assert entry.action == LogEntry.Action.UPDATE
    assert entry.additional_data == {"decision": "hand_off", "organization": practice.org.pk}
    assert entry.changes_dict["status"] == ["open", "handed_off"]
    assert events_of(conversation, "status")[-1] == {"state": "handed_off", "text": ""}


def test_hand_off_of_a_conversation_not_with_alfred_changes_nothing(practice, conversation, staff):
    taken_over(conversation, staff)
    entries = LogEntry.objects.get_for_object(conversation).count()

    assert conversation_hand_off(conversation_id=conversation.pk, member=practice.anna) is False

    assert refreshed(conversation).status == Status.WITH_STAFF
    assert LogEntry.objects.get_for_object(conversation).count() == entries


@pytest.mark.parametrize("state", ["handed_off", "with_staff"])
def test_a_member_message_is_kept_for_the_person_and_no_turn_runs(
    practice, conversation, staff, queued_turns, django_capture_on_commit_callbacks, state
):
    handed_off(conversation)
    if state == "with_staff":
        taken_over(conversation, staff)

    with django_capture_on_commit_callbacks(execute=True):
        message, created = say(conversation, "Is anybody there?", "client-held-1")

    assert created is True
    assert message.status == Message.Status.COMPLETE
    queued_turns.assert_not_called()
    conversation.refresh_from_db()
    assert conversation.status == state
    assert conversation.run_status != Conversation.RunStatus.QUEUED
    assert not Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT).exists()


def test_a_member_message_while_open_queues_its_turn(conversation, queued_turns, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        message, _ = say(conversation, "Give Tom booking access", "client-open-1")

    assert message.status == Message.Status.PENDING
    queued_turns.assert_called_once_with(conversation.pk, message.pk, "")


def test_the_member_withdraws_the_hand_off(practice, conversation):
    handed_off(conversation)

    conversation_hand_off_cancel(member=practice.anna, conversation_id=conversation.pk)

    conversation.refresh_from_db()
    assert conversation.status == Status.OPEN
    assert conversation.handed_off_at is None
    assert conversation.graph_epoch == 1
    assert decisions(conversation)[-1] == (practice.anna, "hand_off_cancel")


def test_only_the_member_withdraws_and_only_while_waiting(practice, conversation, staff):
    handed_off(conversation)

    with pytest.raises(NotFound):
        conversation_hand_off_cancel(member=practice.ben, conversation_id=conversation.pk)
    taken_over(conversation, staff)
    with pytest.raises(Conflict) as refused:
        conversation_hand_off_cancel(member=practice.anna, conversation_id=conversation.pk)

    assert refused.value.code == "not_waiting"
    assert refreshed(conversation).status == Status.WITH_STAFF


# --- Take-over ------------------------------------------------------------------------------------------------


def test_take_over_gives_the_conversation_to_the_staff_member(practice, conversation, staff):
    handed_off(conversation)

    conversation_take_over(staff=staff, conversation_id=conversation.pk)

    conversation.refresh_from_db()
    assert conversation.status == Status.WITH_STAFF
    assert conversation.assignee == staff
    assert conversation.taken_over_at is not None
    assert conversation.run_status == Conversation.RunStatus.IDLE
    assert events_of(conversation, "participant") == [{"action": "joined", "name": "Sophie Durand", "role": "support"}]
    assert events_of(conversation, "status")[-1] == {"state": "with_staff", "text": "Sophie Durand"}
    entry = last_log(conversation)
    assert entry.actor == staff
    assert entry.additional_data["decision"] == "take_over"
    assert entry.changes_dict["status"] == ["handed_off", "with_staff"]


def test_an_open_conversation_can_be_taken_over_directly(conversation, staff):
    taken_over(conversation, staff)

    assert (conversation.status, conversation.assignee) == (Status.WITH_STAFF, staff)
    assert last_log(conversation).changes_dict["status"] == ["open", "with_staff"]


def test_take_over_sets_aside_unconfirmed_proposals_and_keeps_those_awaiting_approval(practice, staff):
    lea_conversation = conversation_of(practice.lea)
    unconfirmed = proposal_in(
        lea_conversation, calendar=practice.okafor_main, member=practice.tom, level="view", before=None
    )
    awaiting = proposal_in(
        lea_conversation, calendar=practice.okafor_main, member=practice.tomas, level="book", before=None
    )
    proposal_decide(user=practice.lea, proposal_id=awaiting.pk, hash=awaiting.arguments_hash, decision="confirm")
    assert proposal_status(awaiting) == ActionProposal.Status.AWAITING_APPROVAL

    taken_over(lea_conversation, staff)

    unconfirmed.refresh_from_db()
    assert (unconfirmed.status, unconfirmed.result_code) == ("expired", "taken_over")
    assert decisions(unconfirmed)[-1] == (staff, "expire")
    assert proposal_status(awaiting) == ActionProposal.Status.AWAITING_APPROVAL
    results = events_of(lea_conversation, "result")
    assert {"proposal": unconfirmed.pk, "status": "expired", "code": "taken_over"}.items() <= results[-1].items()


def test_a_second_staff_member_is_told_who_has_it(conversation, staff, other_staff):
    taken_over(conversation, staff)
    entries = LogEntry.objects.get_for_object(conversation).count()

    with pytest.raises(Conflict) as refused:
        conversation_take_over(staff=other_staff, conversation_id=conversation.pk)

    assert refused.value.code == "taken"
    assert "Sophie Durand" in refused.value.detail
    assert refreshed(conversation).assignee == staff
    assert LogEntry.objects.get_for_object(conversation).count() == entries


def test_taking_over_your_own_conversation_again_changes_nothing(conversation, staff):
    taken_over(conversation, staff)
    seq, entries = conversation.last_seq, LogEntry.objects.get_for_object(conversation).count()

    again = conversation_take_over(staff=staff, conversation_id=conversation.pk)

    assert again.assignee == staff
    assert refreshed(conversation).last_seq == seq
    assert LogEntry.objects.get_for_object(conversation).count() == entries


def test_a_closed_conversation_cannot_be_taken_over(conversation, staff, other_staff):
    conversation_close(staff=staff, conversation_id=conversation.pk)

    with pytest.raises(Conflict) as refused:
        conversation_take_over(staff=other_staff, conversation_id=conversation.pk)

    assert refused.value.code == "closed"
    assert refreshed(conversation).status == Status.CLOSED


def test_two_staff_taking_over_at_once_one_wins(transactional_db, practice, staff, other_staff):
    conversation = handed_off(conversation_of(practice.anna))
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def take(person):
        try:
            barrier.wait(timeout=10)
            conversation_take_over(staff=person, conversation_id=conversation.pk)
            outcomes[person.username] = "won"
        except Conflict as refused:
            outcomes[person.username] = refused
        finally:
            connections.close_all()  # this thread's own connection

    threads = [threading.Thread(target=take, args=(person,)) for person in (staff, other_staff)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    winners = [name for name, outcome in outcomes.items() if outcome == "won"]
    losers = [outcome for outcome in outcomes.values() if isinstance(outcome, Conflict)]
    assert len(winners) == 1 and len(losers) == 1
    winner = staff if winners == ["sophie"] else other_staff
    assert losers[0].code == "taken"
    assert winner.display_name in losers[0].detail
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee) == (Status.WITH_STAFF, winner)
    assert [decision for _, decision in decisions(conversation)] == ["hand_off", "take_over"]
    assert len(events_of(conversation, "participant")) == 1


@pytest.fixture
def running_turn(db):
    """Hold a conversation's turn lock on another connection, as a worker running a turn does."""
    holder = connection.get_new_connection(connection.get_connection_params())
    holder.autocommit = True

    def hold(conversation_id: int):
        holder.execute("SELECT pg_advisory_lock(%s, %s)", (TURN_LOCK_NAMESPACE, conversation_id))
        return lambda: holder.execute("SELECT pg_advisory_unlock(%s, %s)", (TURN_LOCK_NAMESPACE, conversation_id))

    yield hold
    holder.close()


def test_take_over_waits_for_the_running_turn_then_gives_up_busy(conversation, staff, running_turn, settings):
    settings.CONSOLE_TAKE_OVER_WAIT = 0.3
    release = running_turn(conversation.pk)

    with pytest.raises(Conflict) as refused:
        conversation_take_over(staff=staff, conversation_id=conversation.pk)

    assert refused.value.code == "busy"
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee) == (Status.OPEN, None)
    assert not LogEntry.objects.get_for_object(conversation).exists()

    release()
    assert taken_over(conversation, staff).assignee == staff


def test_a_turn_queued_before_the_take_over_does_not_run(conversation, staff, queued_turns, in_process_tasks):
    message, _ = say(conversation, "Give Tom booking access to my surgery calendar", "client-race-1")
    assert message.status == Message.Status.PENDING
    taken_over(conversation, staff)

    run_turn.apply(args=(conversation.pk, message.pk))

    message.refresh_from_db()
    assert message.status == Message.Status.COMPLETE
    assert not AgentRun.objects.filter(conversation_id=conversation.pk).exists()
    assert not Message.objects.filter(conversation=conversation, role=Message.Role.ASSISTANT).exists()
    assert refreshed(conversation).status == Status.WITH_STAFF


def test_a_message_stored_as_the_take_over_commits_leaves_no_turn_waiting(
    conversation, staff, queued_turns, in_process_tasks
):
    """The socket read the conversation (open), then a take-over committed, then the message was stored."""
    read_by_the_socket = Conversation.objects.get(pk=conversation.pk)
    taken_over(conversation, staff)

    message, _ = message_receive(conversation=read_by_the_socket, client_id="client-race-2", text="Hello?")
    run_turn.apply(args=(conversation.pk, message.pk))

    message.refresh_from_db()
    conversation.refresh_from_db()
    assert message.status == Message.Status.COMPLETE
    assert not AgentRun.objects.filter(conversation_id=conversation.pk).exists()
    assert conversation.run_status != Conversation.RunStatus.QUEUED  # nothing will ever run it


# --- Staff replies --------------------------------------------------------------------------------------------


def test_the_assignee_replies_and_the_message_names_them(conversation, staff):
    taken_over(conversation, staff)

    message, created = staff_message_send(
        staff=staff, conversation_id=conversation.pk, text="  Hello, I'm here.  ", client_id="staff-1"
    )

    assert created is True
    assert (message.role, message.author, message.text) == (Message.Role.STAFF, staff, "Hello, I'm here.")
    payload = events_of(conversation, "message")[-1]["message"]
    assert payload["id"] == message.pk
    assert payload["role"] == "staff"
    assert payload["author"] == {"name": "Sophie Durand", "role": "support"}


def test_a_staff_reply_sent_twice_is_stored_once(conversation, staff):
    taken_over(conversation, staff)

    first, created = staff_message_send(staff=staff, conversation_id=conversation.pk, text="On it", client_id="s-2")
    again, created_again = staff_message_send(
        staff=staff, conversation_id=conversation.pk, text="On it", client_id="s-2"
    )

    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    assert Message.objects.filter(conversation=conversation, role=Message.Role.STAFF).count() == 1
    assert len(events_of(conversation, "message")) == 1


def test_only_the_assignee_replies(practice, conversation, staff, other_staff):
    with pytest.raises(Conflict) as not_taken:
        staff_message_send(staff=staff, conversation_id=conversation.pk, text="Hi")
    taken_over(conversation, staff)
    with pytest.raises(Conflict) as not_theirs:
        staff_message_send(staff=other_staff, conversation_id=conversation.pk, text="Hi")
    with pytest.raises(ValidationFailed) as empty:
        staff_message_send(staff=staff, conversation_id=conversation.pk, text="   ")

    assert (not_taken.value.code, not_theirs.value.code, empty.value.code) == (
        "not_yours",
        "not_yours",
        "empty_message",
    )
    assert not Message.objects.filter(role=Message.Role.STAFF).exists()


# --- Hand-back and close --------------------------------------------------------------------------------------


def test_hand_back_returns_it_to_alfred_with_a_new_memory(practice, staff):
    conversation = handed_off(conversation_of(practice.lea))
    taken_over(conversation, staff)
    awaiting = proposal_in(
        conversation, calendar=practice.okafor_main, member=practice.tomas, level="book", before=None
    )
    proposal_decide(user=practice.lea, proposal_id=awaiting.pk, hash=awaiting.arguments_hash, decision="confirm")
    unconfirmed = proposal_in(
        conversation, calendar=practice.okafor_main, member=practice.tom, level="view", before=None
    )

    conversation_hand_back(staff=staff, conversation_id=conversation.pk)

    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee, conversation.graph_epoch) == (Status.OPEN, None, 1)
    assert conversation.handed_off_at is None
    assert conversation.run_status == Conversation.RunStatus.IDLE
    for proposal in (awaiting, unconfirmed):
        proposal.refresh_from_db()
        assert (proposal.status, proposal.result_code) == ("expired", "handed_back")
    assert events_of(conversation, "participant")[-1] == {"action": "left", "name": "Sophie Durand", "role": "support"}
    entry = last_log(conversation)
    assert (entry.actor, entry.additional_data["decision"]) == (staff, "hand_back")
    assert entry.changes_dict["status"] == ["with_staff", "open"]


def test_only_the_assignee_hands_back(conversation, staff, other_staff):
    taken_over(conversation, staff)

    with pytest.raises(Conflict) as refused:
        conversation_hand_back(staff=other_staff, conversation_id=conversation.pk)

    assert refused.value.code == "not_yours"
    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee, conversation.graph_epoch) == (Status.WITH_STAFF, staff, 0)


def test_any_staff_member_sends_a_waiting_conversation_back_to_alfred(conversation, other_staff):
    handed_off(conversation)

    conversation_hand_back(staff=other_staff, conversation_id=conversation.pk)

    conversation.refresh_from_db()
    assert (conversation.status, conversation.graph_epoch) == (Status.OPEN, 1)
    assert events_of(conversation, "participant") == []  # nobody had joined
    assert decisions(conversation)[-1] == (other_staff, "hand_back")


def test_a_conversation_with_alfred_cannot_be_handed_back(conversation, staff):
    with pytest.raises(Conflict) as refused:
        conversation_hand_back(staff=staff, conversation_id=conversation.pk)

    assert refused.value.code == "not_with_staff"
    assert refreshed(conversation).graph_epoch == 0


def test_close_ends_the_conversation_and_refuses_further_messages(practice, conversation, staff, queued_turns):
    taken_over(conversation, staff)
    unconfirmed = proposal_in(
        conversation, calendar=practice.novak_surgery, member=practice.tom, level="view", before=None
    )

    conversation_close(staff=staff, conversation_id=conversation.pk)

    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee) == (Status.CLOSED, None)
    assert conversation.closed_at is not None
    assert (proposal_status(unconfirmed), ActionProposal.objects.get(pk=unconfirmed.pk).result_code) == (
        "expired",
        "closed",
    )
    assert events_of(conversation, "status")[-1] == {"state": "closed", "text": ""}
    assert decisions(conversation)[-1] == (staff, "close")

    with pytest.raises(Conflict) as refused:
        say(conversation, "One more thing", "client-closed-1")
    assert refused.value.code == "closed"
    assert not Message.objects.filter(client_id="client-closed-1").exists()
    queued_turns.assert_not_called()


def test_only_the_assignee_closes_a_conversation_they_have(conversation, staff, other_staff):
    taken_over(conversation, staff)

    with pytest.raises(Conflict) as refused:
        conversation_close(staff=other_staff, conversation_id=conversation.pk)

    assert refused.value.code == "not_yours"
    assert refreshed(conversation).status == Status.WITH_STAFF


def test_closing_a_closed_conversation_changes_nothing(conversation, staff):
    conversation_close(staff=staff, conversation_id=conversation.pk)
    seq, entries = refreshed(conversation).last_seq, LogEntry.objects.get_for_object(conversation).count()

    with contextlib.suppress(Conflict):  # refused or a no-op: either way nothing happens twice
        conversation_close(staff=staff, conversation_id=conversation.pk)

    assert refreshed(conversation).last_seq == seq  # no second "closed" event
    assert LogEntry.objects.get_for_object(conversation).count() == entries  # no second "close" entry


# --- Who may do it, and what is recorded --------------------------------------------------------------------


def test_members_are_not_allowed_any_staff_action(practice, conversation):
    proposal = proposal_in(
        conversation, calendar=practice.novak_surgery, member=practice.tom, level="manage", before=None
    )
    proposal_decide(user=practice.anna, proposal_id=proposal.pk, hash=proposal.arguments_hash, decision="confirm")
    handed_off(conversation)
    attempts = {
        "take_over": lambda: conversation_take_over(staff=practice.ben, conversation_id=conversation.pk),
        "hand_back": lambda: conversation_hand_back(staff=practice.ben, conversation_id=conversation.pk),
        "close": lambda: conversation_close(staff=practice.ben, conversation_id=conversation.pk),
        "reply": lambda: staff_message_send(staff=practice.ben, conversation_id=conversation.pk, text="Hi"),
        "approve": lambda: proposal_approve(staff=practice.ben, proposal_id=proposal.pk, hash=proposal.arguments_hash),
        "refuse": lambda: proposal_refuse(
            staff=practice.ben, proposal_id=proposal.pk, hash=proposal.arguments_hash, reason="No"
        ),
    }
    entries = LogEntry.objects.count()

    for name, attempt in attempts.items():
        with pytest.raises(NotAllowed) as refused:
            attempt()
        assert refused.value.code == "not_support_staff", name

    conversation.refresh_from_db()
    assert (conversation.status, conversation.assignee) == (Status.HANDED_OFF, None)
    assert proposal_status(proposal) == ActionProposal.Status.AWAITING_APPROVAL
    assert LogEntry.objects.count() == entries


def test_compliance_officers_are_not_support_staff(conversation):
    officer = UserFactory(username="carla", platform_role="compliance")

    with pytest.raises(NotAllowed):
        conversation_take_over(staff=officer, conversation_id=conversation.pk)


def test_every_change_of_hands_is_audited_with_its_actor(practice, conversation, staff, other_staff):
    handed_off(conversation)
    conversation_hand_off_cancel(member=practice.anna, conversation_id=conversation.pk)
    handed_off(conversation)
    taken_over(conversation, staff)
    conversation_hand_back(staff=staff, conversation_id=conversation.pk)
    taken_over(conversation, other_staff)
    conversation_close(staff=other_staff, conversation_id=conversation.pk)

    assert decisions(conversation) == [
        (practice.anna, "hand_off"),
        (practice.anna, "hand_off_cancel"),
        (practice.anna, "hand_off"),
        (staff, "take_over"),
        (staff, "hand_back"),
        (other_staff, "take_over"),
        (other_staff, "close"),
    ]
    entries = LogEntry.objects.get_for_object(conversation).order_by("pk")
    assert [entry.changes_dict["status"] for entry in entries] == [
        ["open", "handed_off"],
        ["handed_off", "open"],
        ["open", "handed_off"],
        ["handed_off", "with_staff"],
        ["with_staff", "open"],
        ["open", "with_staff"],
        ["with_staff", "closed"],
    ]
    assert {entry.additional_data["organization"] for entry in entries} == {practice.org.pk}
    assert refreshed(conversation).graph_epoch == 2
