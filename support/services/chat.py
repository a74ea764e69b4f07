"""Writes of the chat: conversations, messages, numbered events and their live delivery.

Every event that matters is stored (`ChatEvent`, numbered per conversation) *and* sent to the
conversation's channel group after the transaction commits. The channel layer is at-most-once, so a client
that missed something catches up from the database with `resume`. Token deltas are only sent live: the
assistant message they build is stored as it grows, so a reconnecting client gets its text so far.
"""

import logging
import time

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from governance.errors import Conflict, NotFound, ValidationFailed
from governance.live import group_send_live
from governance.models import Membership
from governance.ratelimits import rate_limit_take
from support.models import ChatEvent, Conversation, Message
from support.services.inbox import inbox_changed

logger = logging.getLogger(__name__)

TITLE_LENGTH = 80
TURN_LOCK_NAMESPACE = 7301  # first half of the two-key advisory lock of a conversation's turns (support.tasks)
TURN_LIMIT_DETAIL = "You are sending many messages. Wait a moment, then send it again."


def chat_group(conversation_id: int) -> str:
    return f"chat.{conversation_id}"


def _send_live(conversation_id: int, frame: dict) -> None:
    group_send_live(chat_group(conversation_id), {"type": "chat.frame", "frame": frame})


_EVENT_INSERT = """
WITH conversation AS (
    UPDATE {conversation} SET last_seq = last_seq + 1{set_status} WHERE id = %s RETURNING id, last_seq
)
INSERT INTO {event} (conversation_id, seq, type, payload, created_at)
SELECT conversation.id, conversation.last_seq, %s, %s, %s FROM conversation
RETURNING id, seq
"""


def event_publish(*, conversation_id: int, type: str, payload: dict, run_status: str | None = None) -> ChatEvent:
    """Store the next numbered event of a conversation (and its new run status, if given) and send it live
    once the transaction commits. One statement: the conversation's counter and the event row together."""
    sql = _EVENT_INSERT.format(
        conversation=connection.ops.quote_name(Conversation._meta.db_table),
        event=connection.ops.quote_name(ChatEvent._meta.db_table),
        set_status=", run_status = %s" if run_status is not None else "",
    )
    created_at = timezone.now()
    payload_field = ChatEvent._meta.get_field("payload")
    params = [*([run_status] if run_status is not None else []), conversation_id, type]
    params += [payload_field.get_db_prep_save(payload, connection), created_at]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        raise Conversation.DoesNotExist(f"no conversation {conversation_id}")
    event = ChatEvent(
        id=row[0], conversation_id=conversation_id, seq=row[1], type=type, payload=payload, created_at=created_at
    )
    frame = event_frame(event)
    transaction.on_commit(lambda: _send_live(conversation_id, frame))
    return event


def event_frame(event: ChatEvent) -> dict:
    return {"type": event.type, "conversation": event.conversation_id, "seq": event.seq, **event.payload}


def token_publish(*, conversation_id: int, message_id: int, offset: int, text: str) -> None:
    """A streamed text delta: live only. `offset` lets the client drop what it already has after a resume."""
    _send_live(
        conversation_id,
        {"type": "token", "conversation": conversation_id, "message": message_id, "offset": offset, "text": text},
    )


def message_payload(message: Message) -> dict:
    """A message as the chat and the console show it; a staff message names its author and their role."""
    author = {"name": message.author.display_name, "role": "support"} if message.author_id else None
    return {
        "message": {
            "author": author,
            "id": message.pk,
            "role": message.role,
            "text": message.text,
            "status": message.status,
            "client_id": message.client_id,
            "reply_to": message.reply_to_id,
            "citations": message.citations,
            "created_at": message.created_at.isoformat(),
        }
    }


def conversation_start(*, user, language: str = "en", organization_id: int | None = None) -> Conversation:
    """A new conversation in one of the user's practices (their first one unless they name another).

    Limited per person (settings.CHAT_CONVERSATIONS_PER_HOUR, across all their sockets): RateLimited past it.
    """
    memberships = Membership.objects.filter(user=user, is_active=True).order_by("organization__name")
    if organization_id is not None:
        memberships = memberships.filter(organization_id=organization_id)
    membership = memberships.first()
    if membership is None:
        raise NotFound("You are not an active member of any practice.", code="no_practice")
    turn_limit_take(user=user, peek=True)
    rate_limit_take(
        key=f"conversations:{user.pk}",
        limit=settings.CHAT_CONVERSATIONS_PER_HOUR,
        window=3600,
        detail="You started many conversations in the last hour. Continue one of them, or wait a little.",
    )
    conversation = Conversation.objects.create(user=user, organization_id=membership.organization_id, language=language)
    inbox_changed(conversation_id=conversation.pk, reason="new")
    return conversation


def turn_limit_take(*, user, peek: bool = False) -> None:
    """One more turn for this person (settings.CHAT_TURNS_PER_MINUTE, across all their sockets and tabs).
    `peek`: only check that one more is still allowed (a new conversation's first message counts once)."""
    rate_limit_take(
        key=f"turns:{user.pk}", limit=settings.CHAT_TURNS_PER_MINUTE, window=60, detail=TURN_LIMIT_DETAIL, peek=peek
    )


def run_status_set(*, conversation_id: int, status: str, text: str = "") -> None:
    """The run status the UI shows (queued, running, waiting for confirmation, done, failed)."""
    event_publish(
        conversation_id=conversation_id, type="status", payload={"state": status, "text": text}, run_status=status
    )


def message_receive(
    *, conversation: Conversation, client_id: str, text: str, oidc_access_token: str = ""
) -> tuple[Message, bool]:
    """Store a user message once (idempotent on the client's id) and queue its turn after commit.

    Returns (message, created). A repeated client id returns the stored message and queues nothing.
    In OIDC mode the person's access token (from their session) goes with the task: the worker calls the
    API on their authority with it; in local mode the worker gets a short-lived token from the local issuer.
    """
    from support.tasks import run_turn  # tasks import services: imported here to keep the modules acyclic

    text = text.strip()
    if not text:
        raise ValidationFailed("A message needs some text.", code="empty_message")
    existing = Message.objects.filter(conversation=conversation, client_id=client_id).first()
    if existing is not None:
        return existing, False
    if conversation.status == Conversation.Status.CLOSED:
        raise Conflict("This conversation is closed. Start a new conversation to continue.", code="closed")
    turn_limit_take(user=conversation.user)
    try:
        with transaction.atomic():
            # Read under the row's lock: a take-over or a close committing now comes before or after, never between.
            status = Conversation.objects.select_for_update().values_list("status", flat=True).get(pk=conversation.pk)
            if status == Conversation.Status.CLOSED:
                raise Conflict("This conversation is closed. Start a new conversation to continue.", code="closed")
            # With a person (or waiting for one), the message is kept for them: no turn runs, Alfred says nothing.
            held = status in (Conversation.Status.HANDED_OFF, Conversation.Status.WITH_STAFF)
            message = Message.objects.create(
                conversation=conversation,
                role=Message.Role.USER,
                client_id=client_id,
                text=text,
                status=Message.Status.COMPLETE if held else Message.Status.PENDING,
            )
            if not conversation.title:
                conversation.title = text[:TITLE_LENGTH]
            conversation.save(update_fields=["title", "updated_at"])
            event_publish(conversation_id=conversation.pk, type="message", payload=message_payload(message))
            if held:
                inbox_changed(conversation_id=conversation.pk, reason="message")
            else:
                run_status_set(conversation_id=conversation.pk, status=Conversation.RunStatus.QUEUED)
                transaction.on_commit(lambda: run_turn.delay(conversation.pk, message.pk, oidc_access_token))
    except IntegrityError:
        # The same client id at the same moment from two sockets: the other one stored it.
        return Message.objects.get(conversation=conversation, client_id=client_id), False
    return message, True


class ReplyWriter:
    """Streams one assistant message: token frames live, its text saved as it grows (at most every
    `save_every` seconds, so a reconnecting client gets it), and a stored `message` event when done.

    Made for retries: a turn that runs again after a crash reuses its reply and starts it over.
    """

    def __init__(
        self,
        *,
        conversation_id: int,
        turn_key: str,
        reply_to_id: int | None = None,
        save_every: float = 0.25,
        send_every: float = 0.05,
    ):
        self.conversation_id = conversation_id
        self.message, _ = Message.objects.update_or_create(
            conversation_id=conversation_id,
            turn_key=turn_key,
            defaults={
                "role": Message.Role.ASSISTANT,
                "status": Message.Status.STREAMING,
                "text": "",
                "reply_to_id": reply_to_id,
            },
        )
        self.text = ""
        self.save_every = save_every
        self._saved_at = 0.0
        self.send_every = send_every
        self._sent_at = 0.0
        self._sent_length = 0  # the text sent live so far: a token frame carries everything after it

    def write(self, delta: str) -> None:
        """Deltas arriving within `send_every` of the last token frame wait for the next one (or for the
        final message, which replaces them): one frame per delta costs a channel-layer send each."""
        if not delta:
            return
        self.text += delta
        now = time.monotonic()
        if now - self._sent_at >= self.send_every:
            self._sent_at = now
            token_publish(
                conversation_id=self.conversation_id,
                message_id=self.message.pk,
                offset=self._sent_length,
                text=self.text[self._sent_length :],
            )
            self._sent_length = len(self.text)
        if now - self._saved_at >= self.save_every:
            self._saved_at = now
            Message.objects.filter(pk=self.message.pk).update(text=self.text)

    def finish(self, *, text: str | None = None, citations: list | None = None) -> Message:
        """Store the complete reply (or `text`, when it was not streamed) and publish it."""
        message = self.message
        message.text = self.text if text is None else text
        message.citations = citations or []
        message.status = Message.Status.COMPLETE
        message.save(update_fields=["text", "citations", "status"])
        event_publish(conversation_id=self.conversation_id, type="message", payload=message_payload(message))
        return message


def user_message_done(*, message_id: int) -> None:
    Message.objects.filter(pk=message_id, status=Message.Status.PENDING).update(status=Message.Status.COMPLETE)
