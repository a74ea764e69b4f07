"""Reads of the support app, always scoped to what the caller may see: the practice domain and the chat for
members; for support staff (the console is theirs alone: views check the role), every practice's
conversations — the inbox, the approval queue, a transcript with its trace — in a fixed number of queries
whatever their length (tests hold the counts)."""

from dataclasses import dataclass
from datetime import date

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Case, CharField, Count, Exists, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.models import AgentRun
from governance.access import active_membership
from governance.errors import NotAllowed, NotFound
from governance.models import AuditRecord, Membership
from knowledge.models import Article, Chunk
from support.models import AccessLevel, ActionProposal, Calendar, CalendarAccess, ChatEvent, Conversation, Message


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


@dataclass(frozen=True)
class ChatWelcome:
    """What the chat's welcome examples may name: real names of the member's own practice, never another's."""

    colleague: str = ""  # an active member of the practice, not the member ("Karim Haddad")
    calendar: str = ""  # a calendar of that practice the member owns or manages ("Consultations Dr Martin")
    articles: frozenset[str] = frozenset()  # of the slugs asked about, those a how-to question can be answered from


def chat_welcome(*, user, language: str, article_slugs=()) -> ChatWelcome:
    """The names for the welcome examples of a new conversation, from the member's first practice (the one a new
    conversation belongs to, as `conversation_start` picks it): one of the member's calendars (owned before
    managed, then by name) and a colleague to give access to it (an active member who is neither the member nor
    the calendar's owner, preferably without access to it yet); no colleague when there is no calendar. And which
    of `article_slugs` are published, indexed articles in `language` ("fr" matches "fr" and "fr-CA").
    At most three queries."""
    practices = Membership.objects.filter(user=user, is_active=True).order_by("organization__name")
    first_practice = Subquery(practices.values("organization_id")[:1])
    calendar = (
        Calendar.objects.filter(organization_id=first_practice)
        .filter(
            Q(owner=user)
            | Q(pk__in=CalendarAccess.objects.filter(user=user, level=AccessLevel.MANAGE).values("calendar_id"))
        )
        .annotate(managed=Case(When(owner=user, then=Value(0)), default=Value(1)))
        .order_by("managed", "name", "id")
        .values("id", "name", "owner_id", "organization_id")
        .first()
    )
    colleague = None
    if calendar is not None:
        has_access = Exists(CalendarAccess.objects.filter(calendar_id=calendar["id"], user=OuterRef("user")))
        colleague = (
            Membership.objects.filter(organization_id=calendar["organization_id"], is_active=True, user__is_active=True)
            .exclude(user_id__in=(user.pk, calendar["owner_id"]))
            .select_related("user")
            .annotate(has_access=has_access)
            .order_by("has_access", "user__last_name", "user__first_name", "user_id")
            .first()
        )
    articles = frozenset()
    if article_slugs:
        base = language.split("-")[0].lower()
        articles = frozenset(
            Article.objects.filter(
                Q(language__iexact=base) | Q(language__istartswith=f"{base}-"),
                slug__in=list(article_slugs),
                status=Article.Status.PUBLISHED,
                published_revision__isnull=False,
            )
            .filter(Exists(Chunk.objects.filter(article=OuterRef("pk"))))
            .values_list("slug", flat=True)
        )
    return ChatWelcome(
        colleague=colleague.user.display_name if colleague else "",
        calendar=calendar["name"] if calendar else "",
        articles=articles,
    )


# --- The support console ------------------------------------------------------------------------------------

# The inbox's tabs, in the order staff work them: who waits for a person, what waits for approval, then the rest.
INBOX_STATES = ("handed_off", "approval", "with_staff", "open", "closed")


@dataclass
class InboxFilters:
    state: str = "handed_off"
    organization_id: int | None = None
    language: str = ""
    since: date | None = None
    until: date | None = None
    q: str = ""


def _awaiting_approval(now):
    return ActionProposal.objects.filter(
        conversation=OuterRef("pk"), status=ActionProposal.Status.AWAITING_APPROVAL, expires_at__gt=now
    )


def inbox_conversations(*, filters: InboxFilters) -> QuerySet[Conversation]:
    """The conversations of one tab, filtered, with what a line shows: member, practice, owner, the last
    message, and since when it waits (for a person, or for approval). Oldest wait first where someone waits."""
    now = timezone.now()
    last_message = Message.objects.filter(conversation=OuterRef("pk")).order_by("-id")
    conversations = Conversation.objects.select_related("user", "organization", "assignee").annotate(
        approval_since=Subquery(_awaiting_approval(now).order_by("decided_at").values("decided_at")[:1]),
        last_text=Subquery(last_message.values("text")[:1]),
        last_role=Subquery(last_message.values("role")[:1]),
    )
    state = filters.state
    if state == "approval":
        conversations = conversations.filter(approval_since__isnull=False).order_by("approval_since", "id")
    elif state == "handed_off":
        conversations = conversations.filter(status=Conversation.Status.HANDED_OFF).order_by("handed_off_at", "id")
    elif state == "closed":
        conversations = conversations.filter(status=Conversation.Status.CLOSED).order_by("-closed_at", "-id")
    else:
        conversations = conversations.filter(status=state).order_by("-updated_at", "-id")
    if filters.organization_id:
        conversations = conversations.filter(organization_id=filters.organization_id)
    if filters.language:
        conversations = conversations.filter(language=filters.language)
    if filters.since:
        conversations = conversations.filter(updated_at__date__gte=filters.since)
    if filters.until:
        conversations = conversations.filter(updated_at__date__lte=filters.until)
    if filters.q:
        words = filters.q.strip()
        said = Message.objects.filter(conversation=OuterRef("pk"), text__icontains=words)
        conversations = conversations.filter(
            Q(user__first_name__icontains=words)
            | Q(user__last_name__icontains=words)
            | Q(user__username__icontains=words)
            | Q(title__icontains=words)
            | Exists(said)
        )
    return conversations


def inbox_counts() -> dict[str, int]:
    """How many conversations each tab holds (unfiltered): one query."""
    now = timezone.now()
    counts = Conversation.objects.aggregate(
        **{status: Count("id", filter=Q(status=status)) for status in ("handed_off", "with_staff", "open", "closed")},
        approval=Count("id", filter=Exists(_awaiting_approval(now))),
    )
    return counts


def approval_queue() -> QuerySet[ActionProposal]:
    """Proposals that members confirmed and that wait for staff approval, oldest first (expired ones left out)."""
    return (
        ActionProposal.objects.filter(status=ActionProposal.Status.AWAITING_APPROVAL, expires_at__gt=timezone.now())
        .select_related("requested_by", "conversation__organization")
        .order_by("decided_at", "id")
    )


def conversation_for_staff(*, conversation_id: int) -> Conversation | None:
    return Conversation.objects.select_related("user", "organization", "assignee").filter(pk=conversation_id).first()


def conversation_transcript(*, conversation: Conversation) -> dict:
    """What staff read of one conversation: every message (member, Alfred, staff) and participant line in order;
    under each member message, the runs that answered it (graph nodes with durations, intent, outcome, model
    calls with tokens, retrieved articles with scores); every proposal with its whole lifecycle from the audit
    log (who proposed, confirmed, approved or refused, executed, and why it failed). A fixed number of queries."""
    messages = list(Message.objects.filter(conversation=conversation).select_related("author").order_by("id"))
    participants = list(ChatEvent.objects.filter(conversation=conversation, type="participant").order_by("seq"))
    runs = list(AgentRun.objects.filter(conversation_id=conversation.pk).order_by("id"))
    proposals = list(
        ActionProposal.objects.filter(conversation=conversation)
        .select_related("requested_by", "reviewed_by")
        .order_by("id")
    )
    entries = _proposal_log(proposals)
    articles = _article_titles(runs)
    runs_by_message: dict[int, list] = {}
    runs_by_proposal: dict[int, list] = {}
    for run in runs:
        run.articles = [
            {**hit, "title": articles.get(hit.get("article"), hit.get("article"))} for hit in run.retrieval or []
        ]
        run.tokens = sum(u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) for u in run.usage or [])
        run.total_ms = round(sum(step.get("ms", 0) for step in run.steps or []), 1)
        if run.proposal_id:
            runs_by_proposal.setdefault(run.proposal_id, []).append(run)
        elif run.message_id:
            runs_by_message.setdefault(run.message_id, []).append(run)
    for proposal in proposals:
        proposal.lifecycle = entries.get(proposal.pk, [])
        proposal.runs = runs_by_proposal.get(proposal.pk, [])
    proposals_by_message: dict[int, list] = {}
    for proposal in proposals:
        proposals_by_message.setdefault(proposal.message_id, []).append(proposal)
    items = [
        {
            "kind": "message",
            "at": message.created_at,
            "message": message,
            "runs": runs_by_message.get(message.pk, []),
            "proposals": proposals_by_message.get(message.pk, []),
        }
        for message in messages
    ]
    items += [{"kind": "participant", "at": event.created_at, "event": event.payload} for event in participants]
    items.sort(key=lambda item: item["at"])
    return {"items": items, "proposals": proposals}


def _proposal_log(proposals: list[ActionProposal]) -> dict[int, list[LogEntry]]:
    if not proposals:
        return {}
    content_type = ContentType.objects.get_for_model(ActionProposal)
    entries = (
        LogEntry.objects.filter(content_type=content_type, object_id__in=[p.pk for p in proposals])
        .select_related("actor")
        .order_by("timestamp", "id")
    )
    log: dict[int, list[LogEntry]] = {}
    for entry in entries:
        entry.decision = (entry.additional_data or {}).get("decision", "")
        log.setdefault(entry.object_id, []).append(entry)
    return log


def _article_titles(runs: list[AgentRun]) -> dict[str, str]:
    slugs = {hit.get("article") for run in runs for hit in run.retrieval or [] if hit.get("article")}
    if not slugs:
        return {}
    return dict(Article.objects.filter(slug__in=slugs).values_list("slug", "title"))


# --- Compliance: the chain of one agent action ---------------------------------------------------------------


@dataclass
class AgentActionChain:
    """Everything one agent action left: the member's message, the agent's runs (model calls, retrieved passages),
    the proposal and its lifecycle (who proposed, confirmed, approved, when), the platform API's access change
    (on whose authority, which service, which service token) and every audit record the correlation ids of
    those steps tie together (refusals included)."""

    proposal: ActionProposal
    message: Message | None
    runs: list[AgentRun]
    lifecycle: list[LogEntry]
    access_changes: list[LogEntry]
    records: list
    correlation_ids: list[str]
    arguments_json: str = ""


def agent_action_chain(*, proposal_id: int) -> AgentActionChain | None:
    """A fixed number of queries, whatever the length of the chain."""
    proposal = (
        ActionProposal.objects.select_related("requested_by", "reviewed_by", "conversation__organization")
        .filter(pk=proposal_id)
        .first()
    )
    if proposal is None:
        return None
    message = (
        Message.objects.select_related("conversation__user", "conversation__organization")
        .filter(pk=proposal.message_id)
        .first()
    )
    runs = list(
        AgentRun.objects.filter(conversation_id=proposal.conversation_id)
        .filter(Q(message_id=proposal.message_id, proposal_id=None) | Q(proposal_id=proposal.pk))
        .order_by("id")
    )
    lifecycle = _proposal_log([proposal]).get(proposal.pk, [])
    access_changes = list(
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(CalendarAccess), additional_data__proposal=proposal.pk
        )
        .select_related("actor")
        .order_by("timestamp", "id")
    )
    cids = sorted(
        {entry.cid for entry in [*lifecycle, *access_changes] if entry.cid}
        | {run.correlation_id for run in runs if run.correlation_id}
    )
    records = (
        list(AuditRecord.objects.filter(correlation_id__in=cids).select_related("actor").order_by("at", "uid"))
        if cids
        else []
    )
    return AgentActionChain(proposal, message, runs, lifecycle, access_changes, records, cids)
