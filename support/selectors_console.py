"""Reads of the support console: the inbox, the approval queue, and a conversation's transcript with its trace.

Support staff see every practice's conversations (the console is theirs alone: views check the role). Lists
are a fixed number of queries whatever their length (tests hold the counts).
"""

from dataclasses import dataclass
from datetime import date

from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from agents.models import AgentRun
from knowledge.models import Article
from support.models import ActionProposal, ChatEvent, Conversation, Message

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
