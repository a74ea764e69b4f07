"""Fixtures of the knowledge tests: an editor, the local embedder, a stand-in embedder, and a worker queue
that records what would be sent to Celery."""

import hashlib
import math
from pathlib import Path

import pytest

from knowledge import embeddings
from knowledge.embeddings import EMBEDDING_DIMENSIONS, EmbeddingError
from knowledge.services import ArticleContent, article_create
from knowledge.tasks import reindex
from tests.factories import UserFactory

REPO = Path(__file__).resolve().parents[2]
DEV_KB = REPO.parent / "shared" / "datasets" / "dev" / "kb"  # the shared dev dataset, beside the repository
OWN_KB = REPO / "tests" / "datasets" / "knowledge" / "kb"


class FakeEmbedder:
    """Vectors from a hash of each text, under a name of its own; raises for texts containing `fail_on`.
    `before_embed` runs before the vectors are returned (to change the database mid-indexing)."""

    def __init__(self, name: str = "fake/hash-v1", *, fail_on: str | None = None, before_embed=None):
        self.name = name
        self.fail_on = fail_on
        self.before_embed = before_embed
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        if self.fail_on and any(self.fail_on in text for text in texts):
            raise EmbeddingError(f"the embeddings endpoint failed: {self.fail_on} is not welcome")
        if self.before_embed:
            self.before_embed()
        return [hash_vector(f"{self.name}:{text}") for text in texts]


def hash_vector(text: str) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [digest[i % len(digest)] - 127.5 + i % 7 for i in range(EMBEDDING_DIMENSIONS)]
    norm = math.sqrt(sum(value * value for value in raw))
    return [value / norm for value in raw]


@pytest.fixture(autouse=True)
def local_embeddings(settings):
    """The settings' embedder is the local model (whatever the environment says), built afresh per test."""
    settings.EMBEDDINGS_PROVIDER = "local"
    embeddings.embedder_reset()
    yield
    embeddings.embedder_reset()


@pytest.fixture
def use_embedder(monkeypatch):
    """Make `embedder()` return the given embedder for the rest of the test."""

    def use(fake):
        monkeypatch.setattr(embeddings, "_embedder", fake)
        return fake

    return use


@pytest.fixture(autouse=True)
def queued(monkeypatch) -> list[int]:
    """The job ids handed to Celery (`reindex.delay`), in order; nothing reaches a broker."""
    job_ids: list[int] = []
    monkeypatch.setattr(reindex, "delay", job_ids.append)
    return job_ids


@pytest.fixture
def editor(db):
    return UserFactory(username="editor", first_name="Eve", last_name="Editor")


@pytest.fixture
def make_article(editor):
    """An article created through the service (a draft unless publish=True)."""

    def make(slug="waiting-list", *, body=None, title=None, language="en", tags=(), publish=False):
        content = ArticleContent(
            title=title or slug.replace("-", " ").capitalize(),
            language=language,
            body=body or f"All about {slug.replace('-', ' ')}. Open Settings to change it.",
            tags=tuple(tags),
        )
        return article_create(actor=editor, slug=slug, content=content, publish=publish)

    return make
