"""Test data of the support console: staff, conversations, proposals, and what the audit log says about them."""

from auditlog.models import LogEntry
from django.core.cache import cache

from agents.graphs.chat.texts import done_text, summary_text
from support.models import ActionProposal, Conversation, Message
from support.services.proposals import proposal_create
from tests.factories import UserFactory


def support_staff(username: str = "sophie", first: str = "Sophie", last: str = "Durand", **fields):
    return UserFactory(username=username, first_name=first, last_name=last, platform_role="support", **fields)


def conversation_of(member, *, title: str = "Help", **fields) -> Conversation:
    organization_id = member.memberships.values_list("organization_id", flat=True).first()
    return Conversation.objects.create(user=member, organization_id=organization_id, title=title, **fields)


def message_in(conversation: Conversation, text: str = "Please do it", **fields) -> Message:
    return Message.objects.create(conversation=conversation, role=Message.Role.USER, text=text, **fields)


def proposal_in(conversation: Conversation, *, calendar, member, level: str | None, before: str | None, action=None):
    """A proposal as Alfred makes it (through proposal_create), asked by the conversation's member."""
    action = action or ("revoke" if level is None else "grant" if before is None else "change")
    names = {"action": action, "member": member.display_name, "calendar": calendar.name}
    return proposal_create(
        conversation_id=conversation.pk,
        message_id=message_in(conversation).pk,
        requested_by=conversation.user,
        action=action,
        arguments={"calendar_id": calendar.pk, "user_id": member.pk, "level": level},
        summary=summary_text("en", **names, level=level, before=before),
        done=done_text("en", **names, level=level),
        before=before,
        fields={},
    )


def decisions(obj) -> list[tuple]:
    """(actor, decision) of each audit log entry of `obj`, oldest first."""
    entries = LogEntry.objects.get_for_object(obj).order_by("timestamp", "pk")
    return [(entry.actor, (entry.additional_data or {}).get("decision")) for entry in entries]


def events_of(conversation: Conversation, type: str) -> list[dict]:
    return [event.payload for event in conversation.events.filter(type=type).order_by("seq")]


def proposal_status(proposal: ActionProposal) -> str:
    proposal.refresh_from_db()
    return proposal.status


def rate_limits_reset() -> None:
    """Forget every rate-limit counter. Not cache.clear(): the test cache shares its Redis database with the
    Celery broker and the channel layer, and clear() is FLUSHDB (a running worker would lose its queue)."""
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(match=cache.make_key("ratelimit:*")):
        client.delete(key)
