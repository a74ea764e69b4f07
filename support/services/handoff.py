"""A conversation between Alfred and a person from support: hand-off, take-over, staff replies, hand-back, close.

Who answers is the conversation's `status` (see `Conversation`). Each change of hands is one conditional
UPDATE on the status that allows it — two members of staff taking over at once: one wins, the other gets a
Conflict naming who has it — followed by its audit log entry and the events the member and the inbox see.

A take-over first waits (at most settings.CONSOLE_TAKE_OVER_WAIT seconds) for a turn Alfred is running in the
conversation: it takes the turn's lock (tasks.conversation_lock) for its transaction, so once it commits no
turn is running and none will start (run_turn reads the status under the same lock). A hand-back gives Alfred
a new graph epoch — a clean memory: no pending question, no stale proposal — and the messages written while a
person answered are never replayed to it.
"""

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from governance.audit import audit_update
from governance.errors import Conflict, NotAllowed, NotFound, ValidationFailed
from support.models import Conversation, Message
from support.services.chat import TURN_LOCK_NAMESPACE, event_publish, message_payload, run_status_set
from support.services.inbox import inbox_changed
from support.services.proposals import proposals_set_aside

Status = Conversation.Status


def _staff_only(staff) -> None:
    if not getattr(staff, "is_support_staff", False):
        raise NotAllowed("Only support staff can do this.", code="not_support_staff")


def _conversation(conversation_id: int) -> Conversation:
    conversation = Conversation.objects.select_related("assignee", "user").filter(pk=conversation_id).first()
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def _log(conversation: Conversation, before: str, *, actor, decision: str, **data) -> None:
    audit_update(
        conversation,
        actor=actor,
        changes={"status": (before, conversation.status)},
        data={"decision": decision, "organization": conversation.organization_id, **data},
    )


def _participant(conversation_id: int, action: str, staff) -> None:
    """The member sees who joined or left: the person's name and role (the role is named in their language)."""
    payload = {"action": action, "name": staff.display_name, "role": "support"}
    event_publish(conversation_id=conversation_id, type="participant", payload=payload)


def conversation_hand_off(*, conversation_id: int, member) -> bool:
    """The member asked for a person: the conversation waits for one (Alfred answers nothing until staff hand it
    back or the member withdraws the request). False when it was not with Alfred."""
    now = timezone.now()
    updated = Conversation.objects.filter(pk=conversation_id, status=Status.OPEN).update(
        status=Status.HANDED_OFF, handed_off_at=now
    )
    if not updated:
        return False
    conversation = _conversation(conversation_id)
    _log(conversation, Status.OPEN, actor=member, decision="hand_off")
    # The run status goes idle with the same event: a client resuming now must not see Alfred "working".
    event_publish(
        conversation_id=conversation_id,
        type="status",
        payload={"state": "handed_off", "text": ""},
        run_status=Conversation.RunStatus.IDLE,
    )
    inbox_changed(conversation_id=conversation_id, reason="handoff")
    return True


def conversation_hand_off_cancel(*, member, conversation_id: int) -> Conversation:
    """The member withdraws the request before anyone took it: Alfred answers again, from a clean state."""
    conversation = _conversation(conversation_id)
    if conversation.user_id != member.pk:
        raise NotFound("No such conversation.")
    with transaction.atomic():
        updated = Conversation.objects.filter(pk=conversation_id, status=Status.HANDED_OFF).update(
            status=Status.OPEN, handed_off_at=None, graph_epoch=F("graph_epoch") + 1
        )
        if not updated:
            raise Conflict("Nobody is waiting to take this conversation now.", code="not_waiting")
        conversation.refresh_from_db()
        _log(conversation, Status.HANDED_OFF, actor=member, decision="hand_off_cancel")
        proposals_set_aside(conversation_id=conversation_id, actor=member, code="handed_back")
        run_status_set(conversation_id=conversation_id, status=Conversation.RunStatus.IDLE, text="")
        inbox_changed(conversation_id=conversation_id, reason="hand_back")
    return conversation


def _wait_for_running_turn(conversation_id: int) -> None:
    """Hold the turn lock until this transaction ends; a turn still running past the wait is a Conflict."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('lock_timeout', %s, true)", [f"{int(settings.CONSOLE_TAKE_OVER_WAIT * 1000)}ms"]
        )
        try:
            with transaction.atomic():  # a savepoint: the timeout must not spoil the outer transaction
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [TURN_LOCK_NAMESPACE, conversation_id])
        except OperationalError:
            raise Conflict("Alfred is still answering here; try again in a moment.", code="busy") from None
        cursor.execute("SELECT set_config('lock_timeout', '0', true)")


def conversation_take_over(*, staff, conversation_id: int) -> Conversation:
    """A member of staff takes the conversation: Alfred stops answering, the member sees who joined.

    One owner at a time: a second member of staff gets a Conflict naming the owner. Taking over your own is a
    no-op. Proposals still waiting for the member's confirmation are set aside (the person now decides what
    to do); ones waiting for staff approval stay in the approval queue.
    """
    _staff_only(staff)
    conversation = _conversation(conversation_id)
    if conversation.status == Status.WITH_STAFF and conversation.assignee_id == staff.pk:
        return conversation
    with transaction.atomic():
        _wait_for_running_turn(conversation_id)
        before = Conversation.objects.filter(pk=conversation_id).values_list("status", flat=True).first()
        updated = Conversation.objects.filter(
            pk=conversation_id, status__in=(Status.OPEN, Status.HANDED_OFF), assignee__isnull=True
        ).update(status=Status.WITH_STAFF, assignee=staff, taken_over_at=timezone.now())
        conversation = _conversation(conversation_id)
        if not updated:
            if conversation.status == Status.WITH_STAFF:
                owner = conversation.assignee.display_name if conversation.assignee else "someone"
                raise Conflict(f"{owner} has already taken this conversation over.", code="taken")
            raise Conflict("This conversation is closed.", code="closed")
        _log(conversation, before, actor=staff, decision="take_over")
        proposals_set_aside(conversation_id=conversation_id, actor=staff, code="taken_over", only_unconfirmed=True)
        _participant(conversation_id, "joined", staff)
        event_publish(
            conversation_id=conversation_id,
            type="status",
            payload={"state": "with_staff", "text": staff.display_name},
            run_status=Conversation.RunStatus.IDLE,
        )
        inbox_changed(conversation_id=conversation_id, reason="take_over")
    return conversation


def conversation_hand_back(*, staff, conversation_id: int) -> Conversation:
    """Back to Alfred, from a clean state: a new graph epoch, every undecided proposal set aside.

    The member of staff who has the conversation hands it back; any member of staff can send one that waits
    for a person back to Alfred.
    """
    _staff_only(staff)
    conversation = _conversation(conversation_id)
    before = conversation.status
    with transaction.atomic():
        mine = Conversation.objects.filter(pk=conversation_id, status=Status.WITH_STAFF, assignee=staff)
        waiting = Conversation.objects.filter(pk=conversation_id, status=Status.HANDED_OFF)
        changes = {"status": Status.OPEN, "assignee": None, "handed_off_at": None, "graph_epoch": F("graph_epoch") + 1}
        if not (mine.update(**changes) or waiting.update(**changes)):
            if conversation.status == Status.WITH_STAFF:
                raise Conflict("Only the person who took this conversation over can hand it back.", code="not_yours")
            raise Conflict("This conversation is not with support.", code="not_with_staff")
        conversation.refresh_from_db()
        _log(conversation, before, actor=staff, decision="hand_back")
        proposals_set_aside(conversation_id=conversation_id, actor=staff, code="handed_back")
        if before == Status.WITH_STAFF:
            _participant(conversation_id, "left", staff)
        run_status_set(conversation_id=conversation_id, status=Conversation.RunStatus.IDLE, text="")
        inbox_changed(conversation_id=conversation_id, reason="hand_back")
    return conversation


def conversation_close(*, staff, conversation_id: int) -> Conversation:
    """Close it: nobody answers any more; the member can start a new conversation."""
    _staff_only(staff)
    conversation = _conversation(conversation_id)
    if conversation.status == Status.CLOSED:
        raise Conflict("This conversation is closed already.", code="closed")
    if conversation.status == Status.WITH_STAFF and conversation.assignee_id != staff.pk:
        raise Conflict("Only the person who took this conversation over can close it.", code="not_yours")
    before = conversation.status
    with transaction.atomic():
        _wait_for_running_turn(conversation_id)
        updated = Conversation.objects.filter(pk=conversation_id, status=before).update(
            status=Status.CLOSED, closed_at=timezone.now(), assignee=None
        )
        if not updated:
            raise Conflict("This conversation changed meanwhile; reload it.", code="changed")
        conversation.refresh_from_db()
        _log(conversation, before, actor=staff, decision="close")
        proposals_set_aside(conversation_id=conversation_id, actor=staff, code="closed")
        event_publish(conversation_id=conversation_id, type="status", payload={"state": "closed", "text": ""})
        Conversation.objects.filter(pk=conversation_id).update(run_status=Conversation.RunStatus.IDLE)
        inbox_changed(conversation_id=conversation_id, reason="close")
    return conversation


def staff_message_send(*, staff, conversation_id: int, text: str, client_id: str = "") -> tuple[Message, bool]:
    """A reply from the member of staff who has the conversation: stored like any message, sent live.

    Idempotent on `client_id` (a reply sent twice after a network error is stored once). Returns (message, created).
    """
    _staff_only(staff)
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("A message needs some text.", code="empty_message")
    if len(text) > settings.CHAT_MAX_MESSAGE_CHARS:
        raise ValidationFailed(
            f"Messages are limited to {settings.CHAT_MAX_MESSAGE_CHARS} characters.", code="too_long"
        )
    conversation = _conversation(conversation_id)
    if conversation.status != Status.WITH_STAFF or conversation.assignee_id != staff.pk:
        raise Conflict("Take this conversation over before you reply.", code="not_yours")
    mine = Message.objects.filter(conversation=conversation, role=Message.Role.STAFF, author=staff)
    if client_id and (existing := mine.filter(client_id=client_id).first()) is not None:
        return existing, False
    try:
        with transaction.atomic():
            message = Message.objects.create(
                conversation=conversation, role=Message.Role.STAFF, author=staff, client_id=client_id, text=text
            )
            event_publish(conversation_id=conversation_id, type="message", payload=message_payload(message))
            Conversation.objects.filter(pk=conversation_id).update(updated_at=timezone.now())
    except IntegrityError:  # the same reply at the same moment (a double submit): the other one stored it
        existing = mine.filter(client_id=client_id).first()
        if existing is None:
            raise ValidationFailed("This reply's id is taken; send it again.", code="duplicate_id") from None
        return existing, False
    return message, True
