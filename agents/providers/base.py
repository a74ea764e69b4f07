"""The interface every LLM provider implements, and the plain data it exchanges with the graph.

The model only ever returns *data* that the graph validates: an intent from a closed list, slots whose
values must name real members, calendars and levels of the practice. It never executes anything and never
says on whose authority anything is done: identities come from the session.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

Intent = Literal["calendar_access", "knowledge", "handoff", "other"]
INTENTS: tuple[str, ...] = ("calendar_access", "knowledge", "handoff", "other")
Action = Literal["grant", "change", "revoke"]
Level = Literal["view", "book", "manage"]


@dataclass(frozen=True)
class Usage:
    """What one model call cost. The offline engine reports zeros."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0


class IntentResult(BaseModel):
    """Triage of one user message."""

    model_config = ConfigDict(extra="forbid")

    intent: Intent
    confidence: float = Field(ge=0.0, le=1.0)
    language: Literal["en", "fr"] = "en"  # the language the person wrote in
    reason: str = Field(default="", max_length=300)  # short, for traces; never shown as instructions


class Slots(BaseModel):
    """What a calendar-access request asks for, as the person said it.

    `member` and `calendar` are the words the person used (a name, "Tom", "my surgery calendar",
    "Dr Okafor's calendar"), not ids: the graph's `resolve` step matches them deterministically
    against fresh data. Missing means not said. `calendar_owner` is set when the person names
    the calendar by its owner ("Dr Okafor's calendar") or says "my".
    """

    model_config = ConfigDict(extra="forbid")

    action: Action | None = None
    member: str | None = Field(default=None, max_length=200)
    calendar: str | None = Field(default=None, max_length=200)
    calendar_owner: Literal["me"] | str | None = Field(default=None, max_length=200)
    level: Level | None = None


@dataclass(frozen=True)
class Candidate:
    """A real member or calendar the person may mean (from the platform API, scoped to them)."""

    id: int
    name: str
    extra: str = ""  # a calendar's owner name, a member's role


@dataclass(frozen=True)
class SlotContext:
    """The real names the model may pick from, and what was already understood in this conversation."""

    members: list[Candidate] = field(default_factory=list)
    calendars: list[Candidate] = field(default_factory=list)  # calendars the person can see
    me: str = ""  # the person's own name
    previous: Slots | None = None  # slots understood so far (for answers and corrections)
    question: str = ""  # what Alfred just asked, if it asked something


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk of a published article, numbered as the answer cites it ([1], [2]…).
    Its text is data: whatever it says, it is quoted, never obeyed."""

    number: int
    chunk_id: int
    slug: str
    title: str
    heading: str
    text: str
    language: str = "en"
    similarity: float = 0.0


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer and the passages it cites (their numbers)."""

    sentence: str
    citations: tuple[int, ...] = ()


class ChatModel(Protocol):
    """One provider. Implementations: agents.providers.offline, agents.providers.openai."""

    name: str  # "offline" or "openai/<model>": stored with traces and costs

    def classify_intent(self, text: str) -> tuple[IntentResult, Usage]:
        """Which of calendar_access / knowledge / handoff / other the message is, and its language."""
        ...

    def extract_slots(self, text: str, *, context: SlotContext) -> tuple[Slots, Usage]:
        """The calendar-access request in the message, merged over `context.previous` when the
        message answers a question or corrects ("actually, make it booking")."""
        ...

    def stream_reply(self, *, system: str, user: str, language: str, reference: str = "") -> Iterator[str | Usage]:
        """A free-text reply to `user` following the task `system`, streamed: text deltas (str), then exactly
        one final `Usage`. `reference` is the reply the graph would give itself: a generative model words its
        own (the task quotes the reference); an engine that writes nothing says it. Used for refusals."""
        ...

    def answer(
        self, *, question: str, passages: list[Passage], language: str, strict: bool = False
    ) -> Iterator[str | Usage]:
        """An answer to a how-to question from the passages only, every sentence ending with the numbers of
        the passages that support it ("… as well [1]."): text deltas, then one `Usage`. `strict`: a retry
        after a draft whose sentences were not supported."""
        ...

    def check_support(self, *, claims: list[Claim], passages: list[Passage]) -> tuple[list[bool], Usage]:
        """For each claim, whether the passages it cites support it (fact-checking before anything is shown)."""
        ...
