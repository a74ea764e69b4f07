"""The chat WebSocket (/ws/chat/) and the support console's (/ws/console/). Protocol: docs/chat-protocol.md.

Session-authenticated and origin-checked (alfred/asgi.py). Every client frame is validated; a bad one
(not JSON, too large, too fast, unknown type, unknown or foreign ids) gets an `error` frame and the
connection stays open. Nothing the client sends is lost silently: a stored message is acknowledged.

A socket never outlives the session it was opened with: before each frame the session is read again, and a
session that ended (logout, expiry), a password changed since, or a deactivated account closes the socket
with 4401 and the frame is not handled. A logout also closes the person's other sockets of that session at once.
"""

import json
import logging
import time
import uuid
from typing import Literal

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governance.correlation import correlation
from governance.errors import AlfredError, RateLimited
from governance.sessions import session_is_current, user_group
from support.models import ActionProposal
from support.selectors import conversation_catch_up, conversation_get_for_user, message_by_client_id
from support.services.chat import chat_group, conversation_start, message_payload, message_receive
from support.services.handoff import conversation_hand_off_cancel
from support.services.inbox import INBOX_GROUP
from support.services.proposals import member_token_keep, proposal_decide, proposal_edit

logger = logging.getLogger(__name__)
CLOSE_UNAUTHENTICATED = 4401
BURST = 10


class MessageFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["message"]
    id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")  # the client's own id
    conversation: int | None = None  # None starts a new conversation
    text: str = Field(min_length=1)
    language: Literal["en", "fr"] | None = None


class ConfirmFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["confirm"]
    proposal: int
    hash: str = Field(min_length=64, max_length=64)
    decision: Literal["confirm", "reject"]
    values: dict | None = None  # edited fields: {"member": id, "calendar": id, "level": "book"}


class ResumeFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["resume"]
    conversation: int
    after: int = Field(default=0, ge=0)  # the last event seq the client has


FRAMES = {"message": MessageFrame, "confirm": ConfirmFrame, "resume": ResumeFrame}


class WatchFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["watch"]
    conversation: int | None = None  # None: the inbox (which conversation changed, live)


class CancelHandoffFrame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["cancel_handoff"]
    conversation: int


FRAMES = {**FRAMES, "cancel_handoff": CancelHandoffFrame}


class SessionSocket(AsyncWebsocketConsumer):
    """What both sockets share: session login, a session recheck before every frame, frame validation and limits."""

    frames: dict = {}
    room = "members"  # who may connect: "members" (any logged-in person) or "support" (support staff)

    async def connect(self):
        self.user = self.scope.get("user")
        allowed = self.user is not None and self.user.is_authenticated
        if allowed and self.room == "support":
            allowed = self.user.is_support_staff
        if not allowed:
            # Accept, then close with our own code: the page can tell "log in again" from a network problem.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        self.groups_joined: set[str] = set()
        self.allowance = float(BURST)
        self.checked_at = time.monotonic()
        await self.accept()
        await self.join_group(user_group(self.user.pk))

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        """Each frame is a unit of work of its own: what it causes (a turn, a decision) carries its id."""
        with correlation():
            await self._receive(text_data, bytes_data)

    async def _receive(self, text_data, bytes_data):
        if not hasattr(self, "groups_joined"):
            return  # refused at connect, closing
        if not await database_sync_to_async(session_is_current)(
            session_key=self.session_key, user=self.user, room=self.room
        ):
            return await self.close(code=CLOSE_UNAUTHENTICATED)
        ContentType.objects.clear_cache()  # per unit of work, as for requests and tasks (governance/apps.py)
        raw = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        if len(raw.encode()) > settings.CHAT_MAX_FRAME_BYTES:
            return await self.error("too_large", f"Frames are limited to {settings.CHAT_MAX_FRAME_BYTES} bytes.")
        if not self._take_token():
            return await self.error("too_fast", "Too many frames; wait a moment and try again.")
        try:
            data = json.loads(raw)
        except ValueError:
            return await self.error("bad_json", "A frame must be a JSON object.")
        frame_type = data.get("type") if isinstance(data, dict) else None
        model = self.frames.get(frame_type)
        if model is None:
            return await self.error("unknown_type", f"Frame types are {', '.join(self.frames)}.")
        try:
            frame = model.model_validate(data)
        except ValidationError as exc:
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            return await self.error("invalid", detail, ref=data.get("id"))
        try:
            await getattr(self, f"on_{frame_type}")(frame)
        except RateLimited as exc:
            await self.error(exc.code, exc.detail, ref=getattr(frame, "id", None), retry_after=exc.retry_after)
        except AlfredError as exc:
            await self.error(exc.code, exc.detail, ref=getattr(frame, "id", None))

    async def session_ended(self, event):
        """A logout (of this socket's session) or a change that ends all of the person's sessions."""
        if event.get("session_key") in (None, self.session_key):
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def join_group(self, group: str):
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.add(group)

    async def chat_frame(self, event):
        await self.send_frame(event["frame"])

    async def send_frame(self, frame: dict):
        await self.send(text_data=json.dumps(frame, ensure_ascii=False))

    async def error(self, code: str, detail: str, ref=None, **extra):
        frame = {"type": "error", "code": code, "detail": detail, "error_id": uuid.uuid4().hex[:12], **extra}
        if ref:
            frame["ref"] = ref
        await self.send_frame(frame)

    def _take_token(self) -> bool:
        """A token bucket per connection: CHAT_FRAMES_PER_MINUTE, bursts of BURST."""
        now = time.monotonic()
        rate = settings.CHAT_FRAMES_PER_MINUTE / 60.0
        self.allowance = min(BURST, self.allowance + (now - self.checked_at) * rate)
        self.checked_at = now
        if self.allowance < 1:
            return False
        self.allowance -= 1
        return True


class ChatConsumer(SessionSocket):
    """A practice member's chat: their own conversations only."""

    frames = FRAMES

    async def on_message(self, frame: MessageFrame):
        if len(frame.text) > settings.CHAT_MAX_MESSAGE_CHARS:
            return await self.error(
                "too_long", f"Messages are limited to {settings.CHAT_MAX_MESSAGE_CHARS} characters.", ref=frame.id
            )
        message, created = await database_sync_to_async(self._store_message)(frame)
        await self.join(message.conversation_id)
        await self.send_frame(
            {
                "type": "ack",
                "id": frame.id,
                "conversation": message.conversation_id,
                "created": created,
                **message_payload(message),
            }
        )

    def _store_message(self, frame: MessageFrame):
        if frame.conversation is None:
            # A first message re-sent after a lost ack must not start a second conversation.
            repeated = message_by_client_id(user=self.user, client_id=frame.id)
            if repeated is not None:
                return repeated, False
            conversation = conversation_start(user=self.user, language=frame.language or self._language())
        else:
            conversation = conversation_get_for_user(user=self.user, conversation_id=frame.conversation)
        return message_receive(
            conversation=conversation, client_id=frame.id, text=frame.text, oidc_access_token=self._idp_token()
        )

    def _idp_token(self) -> str:
        """The person's IdP access token from their session (OIDC mode only; never logged, never stored)."""
        session = self.scope.get("session")
        return (session.get("oidc_access_token") or "") if session is not None and settings.OIDC_ENABLED else ""

    def _language(self) -> str:
        return self.user.preferred_language or self.scope.get("language", "en") or "en"

    async def on_confirm(self, frame: ConfirmFrame):
        await database_sync_to_async(self._decide)(frame)

    def _decide(self, frame: ConfirmFrame):
        from django.db import transaction

        from support.tasks import run_decision

        with transaction.atomic():
            if frame.decision == "confirm" and frame.values:
                proposal = proposal_edit(
                    user=self.user, proposal_id=frame.proposal, hash=frame.hash, values=frame.values
                )
                resume = {"kind": "edit", "values": frame.values}
            else:
                proposal = proposal_decide(
                    user=self.user, proposal_id=frame.proposal, hash=frame.hash, decision=frame.decision
                )
                resume = {"kind": "decision", "decision": frame.decision}
            token = self._idp_token()
            if proposal.status == ActionProposal.Status.AWAITING_APPROVAL:
                member_token_keep(proposal_id=proposal.pk, token=token)  # staff approve; it runs then
                return
            transaction.on_commit(lambda: run_decision.delay(proposal.pk, resume, token))

    async def on_resume(self, frame: ResumeFrame):
        conversation = await database_sync_to_async(conversation_get_for_user)(
            user=self.user, conversation_id=frame.conversation
        )
        await self.join(conversation.pk)  # join first: an event sent meanwhile arrives twice, never zero times
        frames = await database_sync_to_async(conversation_catch_up)(conversation=conversation, after=frame.after)
        for catch_up in frames:
            await self.send_frame(catch_up)
        await self.send_frame(
            {
                "type": "resumed",
                "conversation": conversation.pk,
                "last_seq": conversation.last_seq,
                "run_status": conversation.run_status,
            }
        )

    async def on_cancel_handoff(self, frame: CancelHandoffFrame):
        await database_sync_to_async(conversation_hand_off_cancel)(member=self.user, conversation_id=frame.conversation)

    async def join(self, conversation_id: int):
        await self.join_group(chat_group(conversation_id))


class ConsoleConsumer(SessionSocket):
    """Support staff: the inbox's changes, and the live events of the conversations they open."""

    frames = {"watch": WatchFrame}
    room = "support"

    async def on_watch(self, frame: WatchFrame):
        if frame.conversation is None:
            await self.join_group(INBOX_GROUP)
        else:
            exists = await database_sync_to_async(_conversation_exists)(frame.conversation)
            if not exists:
                return await self.error("not_found", "No such conversation.")
            await self.join_group(chat_group(frame.conversation))
        await self.send_frame({"type": "watching", "conversation": frame.conversation})


def _conversation_exists(conversation_id: int) -> bool:
    from support.models import Conversation

    return Conversation.objects.filter(pk=conversation_id).exists()
