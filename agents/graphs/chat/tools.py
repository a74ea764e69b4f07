"""What the chat graph may do, handed to it at run time (LangGraph runtime context, never checkpointed).

The support app implements these (support/agent_tools.py) for one person: every read goes through the
platform API with that person's token, every proposal is stored for them, and `execute` runs only a
proposal they confirmed. The graph never receives a token, a model instance or a database handle.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from agents.providers.base import ChatModel, Passage, Usage


@dataclass(frozen=True)
class Member:
    id: int
    name: str
    first_name: str = ""
    last_name: str = ""
    role: str = ""


@dataclass(frozen=True)
class Calendar:
    id: int
    name: str
    owner_id: int
    owner_name: str
    my_level: str | None  # the person's own level on it (manage for the owner)


@dataclass(frozen=True)
class Practice:
    """The person's practice as the platform API shows it to them, fetched fresh."""

    me: Member
    members: list[Member] = field(default_factory=list)  # active members, the person included
    calendars: list[Calendar] = field(default_factory=list)  # calendars the person owns or can access


@dataclass(frozen=True)
class Proposal:
    id: int
    hash: str
    summary: str


@dataclass(frozen=True)
class Outcome:
    """What became of a proposal: executed | rejected | expired | failed (with the API's code and detail).
    An executed one carries its done-sentence ("Done: Karim Haddad can now see …"), stored with it."""

    status: str
    code: str = ""
    detail: str = ""
    done: str = ""


class ChatTools(Protocol):
    usages: list[tuple[str, Usage]]  # the model calls of the run (step, usage)
    retrieved: list[dict]  # the chunks retrieved in the run: [{"chunk", "article", "score", "similarity"}]

    def status(self, text: str) -> None:
        """Tell the person what Alfred is doing ("looking up your calendars…")."""

    def say(self, text: str | Iterable[str | Usage], *, key: str = "", citations: list[dict] | None = None) -> None:
        """Send an assistant message: a whole text, or streamed deltas from a model (then its Usage), with the
        articles it cites (`[{"n", "slug", "title", "heading", "chunk_id"}]`, numbered as in the text)."""

    def search_knowledge(self, *, query: str, language: str) -> list[Passage]:
        """The relevant passages of published articles, best first, numbered from 1 (recorded with the turn)."""

    def practice(self) -> Practice:
        """Members and calendars, fresh from the platform API, as this person may see them."""

    def current_level(self, *, calendar_id: int, member_id: int) -> str | None:
        """The member's current level on a calendar the person manages (fresh from the API)."""

    def ask(self, *, question: str, field: str, options: list[tuple[int | str, str]]) -> None:
        """Ask the person to choose among real candidates (a form, and the question as a message)."""

    def propose(
        self,
        *,
        action: str,
        calendar: Calendar,
        member: Member,
        level: str | None,
        before: str | None,
        summary: str,
        done: str,
    ) -> Proposal:
        """Store the exact change and show it in a form to confirm or reject (idempotent per message), with
        `summary` (what will change) and `done` (what is true once it is carried out), in plain words."""

    def set_aside(self, *, proposal_id: int) -> None:
        """A newer request replaces a proposal that was not decided."""

    def execute(self, *, proposal_id: int) -> Outcome:
        """Carry out a confirmed proposal through the platform API, at most once."""

    def handoff(self) -> None:
        """Hand the conversation to support staff."""

    def record_usage(self, usage: Usage, *, step: str) -> None:
        """Keep what a model call cost, for traces."""


@dataclass
class ChatContext:
    """The LangGraph runtime context of one run."""

    model: ChatModel
    tools: ChatTools
