"""Reads of the practice domain, always scoped to what the caller may see."""

from django.db.models import CharField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from governance.access import active_membership
from governance.errors import NotAllowed, NotFound
from support.models import AccessLevel, Calendar, CalendarAccess, ChatEvent, Conversation, Message


def calendar_level(*, user, calendar: Calendar) -> str | None:
    """The caller's level on a calendar: manage for the owner, the granted level, or None."""
    if calendar.owner_id == user.pk:
        return AccessLevel.MANAGE
    access = CalendarAccess.objects.filter(calendar=calendar, user=user).only("level").first()
    return access.level if access else None


def calendar_get_for_member(*, user, calendar_id: int) -> Calendar:
    """A calendar of a practice the caller is an active member of; NotFound for any other."""
    calendar = Calendar.objects.select_related("organization", "owner").filter(pk=calendar_id).first()
    if calendar is None or active_membership(user=user, organization_id=calendar.organization_id) is None:
        raise NotFound("No such calendar.")
    return calendar


def calendar_get_for_manager(*, user, calendar_id: int) -> Calendar:
    """A calendar the caller owns or manages (NotFound outside their practices, NotAllowed inside)."""
    calendar = calendar_get_for_member(user=user, calendar_id=calendar_id)
    if calendar_level(user=user, calendar=calendar) != AccessLevel.MANAGE:
        raise NotAllowed("Only the calendar's owner or a member with manage access can do this.")
    return calendar


def calendars_for_user(*, user) -> QuerySet[Calendar]:
    """Calendars the caller owns or has access to, in practices where they are an active member."""
    active_orgs = user.memberships.filter(is_active=True).values("organization_id")
    granted = CalendarAccess.objects.filter(user=user)
    own_level = Subquery(granted.filter(calendar=OuterRef("pk")).values("level")[:1])
    return (
        Calendar.objects.filter(organization_id__in=active_orgs)
        .filter(Q(owner=user) | Q(pk__in=granted.values("calendar_id")))
        .select_related("organization", "owner")
        .annotate(
            my_level=Coalesce(
                Subquery(Calendar.objects.filter(pk=OuterRef("pk"), owner=user).values(v=Value("manage"))[:1]),
                own_level,
                output_field=CharField(),
            )
        )
        .order_by("organization__name", "name", "id")
    )


def calendar_accesses(*, user, calendar_id: int) -> QuerySet[CalendarAccess]:
    """The grants of a calendar the caller owns or manages."""
    calendar = calendar_get_for_manager(user=user, calendar_id=calendar_id)
    return (
        CalendarAccess.objects.filter(calendar=calendar)
        .select_related("user", "granted_by")
        .order_by("user__last_name", "user__first_name", "user_id")
    )


def conversation_get_for_user(*, user, conversation_id) -> Conversation:
    """One of the user's own conversations; NotFound for anyone else's (or a malformed id)."""
    if not isinstance(conversation_id, int) or isinstance(conversation_id, bool):
        raise NotFound("No such conversation.")
    conversation = Conversation.objects.filter(pk=conversation_id, user=user).first()
    if conversation is None:
        raise NotFound("No such conversation.")
    return conversation


def conversations_for_user(*, user) -> QuerySet[Conversation]:
    return Conversation.objects.filter(user=user).order_by("-updated_at", "-id")


def conversation_catch_up(*, conversation, after: int) -> list[dict]:
    """The stored events after `after`, as frames, and the text so far of a reply still being written."""
    from support.services.chat import event_frame, message_payload  # formatting shared with the live path

    frames = [event_frame(event) for event in ChatEvent.objects.filter(conversation=conversation, seq__gt=after)]
    for message in Message.objects.filter(conversation=conversation, status=Message.Status.STREAMING):
        frames.append({"type": "message", "conversation": conversation.pk, **message_payload(message)})
    return frames


def conversation_messages(*, user, conversation_id: int) -> list[dict]:
    """What the chat page shows of one of the user's conversations, from its stored events, in order.

    Items are {"kind": "message", "seq", "message": {...}} (a staff message names its `author`),
    {"kind": "form", "seq", "form": {...}, "result": {...} | None} (a proposal's latest result: confirmed,
    then approved, then done replace each other) and {"kind": "participant", "seq", "participant":
    {action, name, role}} (a person from support joined or left); status events only move `seq` on. A message
    stored twice (a retried reply) keeps its first place and its latest text. Empty for anyone else's
    conversation. One query.
    """
    events = ChatEvent.objects.filter(conversation_id=conversation_id, conversation__user=user).only(
        "seq", "type", "payload"
    )
    items: list[dict] = []
    messages: dict[int, dict] = {}
    proposals: dict[int, dict] = {}
    for event in events.order_by("seq"):
        payload = event.payload
        if event.type == "message" and isinstance(payload.get("message"), dict):
            message = payload["message"]
            if message.get("id") in messages:
                messages[message["id"]].update(seq=event.seq, message=message)
                continue
            item = {"kind": "message", "seq": event.seq, "message": message}
            messages[message.get("id")] = item
            items.append(item)
        elif event.type == "form":
            item = {"kind": "form", "seq": event.seq, "form": payload, "result": None}
            if payload.get("kind") == "proposal":
                proposals[payload.get("proposal", {}).get("id")] = item
            items.append(item)
        elif event.type == "result" and payload.get("proposal") in proposals:
            proposals[payload["proposal"]]["result"] = payload  # in seq order: the latest one stays
        elif event.type == "participant":
            items.append({"kind": "participant", "seq": event.seq, "participant": payload})
    answered = False  # a question is answered once the person wrote after it
    for item in reversed(items):
        if item["kind"] == "message" and item["message"].get("role") == "user":
            answered = True
        elif item["kind"] == "form":
            item["answered"] = answered
    return items


def message_by_client_id(*, user, client_id: str) -> Message | None:
    """The user's own message stored under this client id, in any of their conversations."""
    return Message.objects.filter(conversation__user=user, client_id=client_id).first()
