"""The chat graph's tools for one person in one conversation (implements agents.graphs.chat.tools.ChatTools).

Reads and writes of calendar access go through the platform API with this person's token; what the
person sees goes through the chat services (stored events + live frames).
"""

import logging
from collections.abc import Iterable

from django.conf import settings

from agents.graphs.chat.tools import Calendar, Member, Outcome, Practice, Proposal
from agents.providers.base import Passage, Usage
from governance.tokens import issue_local_user_token
from knowledge.retrieval import is_relevant
from knowledge.retrieval import search as knowledge_search
from knowledge.selectors import article_url
from support.models import ActionProposal, Conversation
from support.platform_client import PlatformClient
from support.services.chat import ReplyWriter, event_publish, run_status_set
from support.services.handoff import conversation_hand_off
from support.services.proposals import proposal_create, proposal_execute, proposal_set_aside

logger = logging.getLogger(__name__)
LEVEL_OPTIONS = ("view", "book", "manage")


def user_token_for(user, *, oidc_access_token: str = "") -> str:
    """The person's own token for the API: their IdP access token in OIDC mode, else one from the local issuer."""
    if settings.OIDC_ENABLED:
        if not oidc_access_token:
            raise PermissionError("no access token of the identity provider for this person")
        return oidc_access_token
    return issue_local_user_token(user)


class SupportChatTools:
    def __init__(self, *, conversation: Conversation, message_id: int, user_token: str):
        self.conversation = conversation
        self.message_id = message_id
        self.client = PlatformClient(user_token=user_token)
        self.usages: list[tuple[str, Usage]] = []
        self.retrieved: list[dict] = []  # the chunks retrieved in this turn, stored with its AgentRun
        self._practice: Practice | None = None

    # --- what the person sees ---------------------------------------------------------------------
    def status(self, text: str) -> None:
        run_status_set(conversation_id=self.conversation.pk, status=Conversation.RunStatus.RUNNING, text=text)

    def say(self, text: str | Iterable, *, key: str = "", citations: list[dict] | None = None) -> None:
        writer = ReplyWriter(
            conversation_id=self.conversation.pk,
            turn_key=key or f"message:{self.message_id}",
            reply_to_id=self.message_id,
        )
        citations = [{**citation, "url": article_url(citation["slug"])} for citation in citations or []]
        if isinstance(text, str):
            writer.finish(text=text, citations=citations)
            return
        for item in text:
            if isinstance(item, Usage):
                self.record_usage(item, step="reply")
            else:
                writer.write(item)
        writer.finish(citations=citations)

    # --- the knowledge base ------------------------------------------------------------------------------
    def search_knowledge(self, *, query: str, language: str) -> list[Passage]:
        """Published articles only (knowledge.retrieval), read from Alfred's own database: articles are
        Alfred's content, not the platform's, so no platform API call is involved. Hits that are neither
        close in meaning nor matched by words are dropped; what remains is recorded with the turn."""
        hits = [hit for hit in knowledge_search(query, language=language) if is_relevant(hit)]
        self.retrieved = [
            {"chunk": hit.chunk_id, "article": hit.slug, "score": hit.score, "similarity": hit.similarity}
            for hit in hits
        ]
        return [
            Passage(
                number=number,
                chunk_id=hit.chunk_id,
                slug=hit.slug,
                title=hit.title,
                heading=hit.heading_path,
                text=hit.text,
                language=hit.language,
                similarity=hit.similarity,
            )
            for number, hit in enumerate(hits, 1)
        ]

    def ask(self, *, question: str, field: str, options: list[tuple]) -> None:
        self.say(question)
        payload = {
            "kind": "choice",
            "field": field,
            "question": question,
            "options": [{"value": value, "label": label} for value, label in options],
        }
        event_publish(conversation_id=self.conversation.pk, type="form", payload=payload)

    def record_usage(self, usage: Usage, *, step: str) -> None:
        self.usages.append((step, usage))

    # --- fresh data from the platform API ------------------------------------------------------------
    def practice(self) -> Practice:
        if self._practice is None:
            self._practice = self._fetch_practice()
        return self._practice

    def _fetch_practice(self) -> Practice:
        me = self.client.me()
        organization_id = self.conversation.organization_id
        members = [
            Member(
                id=row["user"]["id"],
                name=row["user"]["name"],
                first_name=row["user"]["first_name"],
                last_name=row["user"]["last_name"],
                role=row["role"],
            )
            for row in self.client.members(organization_id)
            if row["is_active"]
        ]
        calendars = [
            Calendar(
                id=row["id"],
                name=row["name"],
                owner_id=row["owner"]["id"],
                owner_name=row["owner"]["name"],
                my_level=row["my_level"],
            )
            for row in self.client.calendars()
            if row["organization_id"] == organization_id
        ]
        myself = next((m for m in members if m.id == me["id"]), Member(id=me["id"], name=me["name"]))
        return Practice(me=myself, members=members, calendars=calendars)

    def current_level(self, *, calendar_id: int, member_id: int) -> str | None:
        return next((row["level"] for row in self.client.accesses(calendar_id) if row["user"]["id"] == member_id), None)

    # --- proposals ----------------------------------------------------------------------------------
    def propose(self, *, action, calendar, member, level, before, summary, done) -> Proposal:
        practice = self.practice()
        fields = {
            "member": {
                "value": member.id,
                "options": [{"value": m.id, "label": m.name} for m in practice.members if m.id != practice.me.id],
            },
            "calendar": {
                "value": calendar.id,
                "options": [{"value": c.id, "label": c.name} for c in practice.calendars if c.my_level == "manage"],
            },
            "level": {"value": level, "options": [{"value": v, "label": v} for v in LEVEL_OPTIONS]},
        }
        proposal = proposal_create(
            conversation_id=self.conversation.pk,
            message_id=self.message_id,
            requested_by=self.conversation.user,
            action=action,
            arguments={"calendar_id": calendar.id, "user_id": member.id, "level": level},
            summary=summary,
            done=done,
            before=before,
            fields=fields,
        )
        run_status_set(conversation_id=self.conversation.pk, status=Conversation.RunStatus.WAITING)
        return Proposal(id=proposal.pk, hash=proposal.arguments_hash, summary=proposal.summary)

    def set_aside(self, *, proposal_id: int) -> None:
        proposal_set_aside(proposal_id=proposal_id)

    def execute(self, *, proposal_id: int) -> Outcome:
        proposal = proposal_execute(proposal_id=proposal_id, client=self.client)
        if proposal.status == ActionProposal.Status.EXECUTED:
            return Outcome("executed", detail=proposal.summary, done=proposal.done)
        return Outcome(proposal.status, code=proposal.result_code, detail=proposal.result_detail)

    def handoff(self) -> None:
        conversation_hand_off(conversation_id=self.conversation.pk, member=self.conversation.user)
