"""Nearest-exemplar similarity with the local embedding model (all-MiniLM-L6-v2, bundled, on CPU).

The model is imported and loaded lazily, once per process, under a lock: importing this module costs
nothing, and Django start-up never waits for torch. Everything runs offline (`HF_HUB_OFFLINE=1`).
"""

import logging
import threading
from dataclasses import dataclass

from agents.providers.offline.exemplars import EXEMPLARS
from knowledge.embeddings import local_model

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_index: "ExemplarIndex | None" = None
_unavailable = False


@dataclass(frozen=True)
class Nearest:
    """The closest exemplar of one intent and its cosine similarity (rounded, so ties are stable)."""

    intent: str
    score: float
    exemplar: str


class ExemplarIndex:
    """The exemplar sentences of every intent, embedded once; `nearest` embeds one message."""

    def __init__(self, model, exemplars: dict[str, list[str]]):
        self.model = model
        self.labels = [intent for intent, sentences in exemplars.items() for _ in sentences]
        self.sentences = [sentence for sentences in exemplars.values() for sentence in sentences]
        self.vectors = self._encode(self.sentences)

    def _encode(self, sentences: list[str]):
        return self.model.encode(
            sentences, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )

    def nearest(self, text: str) -> dict[str, Nearest]:
        """For each intent, its most similar exemplar to `text`."""
        similarities = self.vectors @ self._encode([text])[0]
        best: dict[str, Nearest] = {}
        for label, sentence, similarity in zip(self.labels, self.sentences, similarities, strict=True):
            score = round(float(similarity), 3)
            if label not in best or score > best[label].score:
                best[label] = Nearest(label, score, sentence)
        return best


def _load_model():
    return local_model()  # one model per process, shared with the knowledge base


def exemplar_index() -> ExemplarIndex | None:
    """The process-wide index, loaded on first use. None when the model cannot be loaded here (not
    installed, files missing): the engine then runs on its rules alone, and says so once in the log."""
    global _index, _unavailable
    if _index is not None or _unavailable:
        return _index
    with _lock:
        if _index is None and not _unavailable:
            try:
                _index = ExemplarIndex(_load_model(), EXEMPLARS)
            except (ImportError, OSError) as error:
                _unavailable = True
                logger.warning("offline engine: embeddings unavailable, rules only", extra={"error": str(error)})
    return _index
