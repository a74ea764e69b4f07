"""The support console's live inbox: a signal to every open inbox page that a conversation changed state.

Live only, after commit: the inbox page re-reads its list from the database when told, so a lost signal
costs a stale line until the next one (or a reload), never a lost conversation.
"""

from django.db import transaction

from governance.live import group_send_live

INBOX_GROUP = "console.inbox"


def inbox_changed(*, conversation_id: int, reason: str) -> None:
    """`reason`: handoff, message, take_over, hand_back, close, approval, new."""
    frame = {"type": "inbox", "conversation": conversation_id, "reason": reason}
    transaction.on_commit(lambda: group_send_live(INBOX_GROUP, {"type": "chat.frame", "frame": frame}))
