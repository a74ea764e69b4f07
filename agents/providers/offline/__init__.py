"""The offline engine: Alfred's embedded default model provider. No network, no generative model,
deterministic: the same message and context always give the same answer.

- `classify_intent`: English/French phrase rules, with the local embedding model (all-MiniLM-L6-v2)
  as nearest-exemplar similarity for what the rules do not settle (see `intents`).
- `extract_slots`: words matched against the practice's real names (see `slots`), and
  `match_candidates`, the fuzzy ranking the graph's resolve step uses (see `matching`).
- `stream_reply`: says the graph's own wording, streamed at a model's pace (see `OfflineChatModel.stream_reply`).
- `answer`: extractive, the best sentences of the retrieved passages with their citations (see `answers`);
  `check_support`: the deterministic overlap/embedding check of `agents.grounding`.
"""

import re
import threading
import time
from collections.abc import Iterator
from typing import ClassVar

from django.conf import settings

from agents.grounding import supported_offline
from agents.providers.base import Claim, IntentResult, Passage, SlotContext, Slots, Usage
from agents.providers.offline import embeddings, intents, slots
from agents.providers.offline.answers import extractive_answer
from agents.providers.offline.matching import match_candidates, rank_candidates
from agents.providers.offline.text import detect_language

__all__ = ["OfflineChatModel", "detect_language", "match_candidates", "rank_candidates"]

_FALLBACK_REPLY = {
    "en": "I'm sorry, I can't help with that here.",
    "fr": "Désolé, je ne peux pas vous aider pour cela ici.",
}


def _usage(started: float) -> Usage:
    return Usage(model=OfflineChatModel.name, latency_ms=round((time.perf_counter() - started) * 1000, 2))


class OfflineChatModel:
    """The `ChatModel` that runs inside Alfred's process. Thread-safe: it holds no per-call state, and the
    embedding model behind it is loaded once per process, on first use (or `warm_up()`)."""

    name = "offline"
    _shared: ClassVar["OfflineChatModel | None"] = None
    _shared_lock = threading.Lock()

    @classmethod
    def shared(cls) -> "OfflineChatModel":
        """The process-wide instance."""
        if cls._shared is None:
            with cls._shared_lock:
                if cls._shared is None:
                    cls._shared = cls()
        return cls._shared

    def warm_up(self) -> bool:
        """Load the embedding model now instead of on the first message; False when it is unavailable."""
        return embeddings.exemplar_index() is not None

    def classify_intent(self, text: str) -> tuple[IntentResult, Usage]:
        """Rules first, embeddings for the rest. Injection attempts get no special intent: see `intents`."""
        started = time.perf_counter()
        return intents.classify(text), _usage(started)

    def extract_slots(self, text: str, *, context: SlotContext) -> tuple[Slots, Usage]:
        """The person's words for each slot, matched against `context`'s real names; see `slots`."""
        started = time.perf_counter()
        return slots.extract(text, context), _usage(started)

    def stream_reply(self, *, system: str, user: str, language: str, reference: str = "") -> Iterator[str | Usage]:
        """Says `reference` — the wording the graph would give — word by word at a model's pace, then one `Usage`.

        The offline engine has no generative model, so it never writes text of its own (and never repeats the
        person's message, `user`). It streams as a model does, `OFFLINE_REPLY_WORDS_PER_SECOND` words a second
        (0: no pause), so that the default engine shows the experience of a real one. An empty `reference`
        gets a fixed polite sentence in `language` ("en" or "fr")."""
        started = time.perf_counter()
        text = reference if reference.strip() else _FALLBACK_REPLY["fr" if language == "fr" else "en"]
        pause = 1 / settings.OFFLINE_REPLY_WORDS_PER_SECOND if settings.OFFLINE_REPLY_WORDS_PER_SECOND > 0 else 0
        for number, word in enumerate(re.findall(r"\s*\S+", text)):
            if pause and number:
                time.sleep(pause)
            yield word
        yield _usage(started)

    def answer(
        self, *, question: str, passages: list[Passage], language: str, strict: bool = False
    ) -> Iterator[str | Usage]:
        """The best sentences of the passages, cited (the same with or without `strict`: nothing is invented)."""
        started = time.perf_counter()
        yield extractive_answer(question, passages)
        yield _usage(started)

    def check_support(self, *, claims: list[Claim], passages: list[Passage]) -> tuple[list[bool], Usage]:
        started = time.perf_counter()
        return supported_offline(claims, passages), _usage(started)
