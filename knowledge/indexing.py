"""Index published revisions: chunk, embed, store with a full-text vector in the article's language.

Embedding runs outside any transaction (it takes time); the chunks of an article are then replaced in one
transaction, and only if the article still points at the revision that was embedded: a publish that
happened meanwhile has queued its own indexing, and searches never see half an article.
"""

import logging
from collections.abc import Callable

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from knowledge.chunking import chunk_article
from knowledge.embeddings import embedder
from knowledge.models import Article, Chunk, ReindexJob

logger = logging.getLogger(__name__)

# Article language → PostgreSQL text search configuration (stemming and stop words). Others: "simple".
SEARCH_CONFIGS = {
    "da": "danish",
    "de": "german",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "it": "italian",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sv": "swedish",
}


REINDEX_EVERYTHING = "everything"  # the reason of a job that re-embeds every published article


def search_config_for(language: str) -> str:
    return SEARCH_CONFIGS.get((language or "").split("-")[0].lower(), "simple")


def embedding_text(heading_path: str, text: str) -> str:
    """What is embedded for a chunk: its place in the article, then its words."""
    return f"{heading_path}\n{text}"


def index_article(article_id: int) -> int:
    """(Re)build the chunks of one article from its published revision; none if it is not published.
    Returns the number of chunks now indexed. Marks the article failed (and re-raises) on error."""
    article = Article.objects.select_related("published_revision").get(pk=article_id)
    revision = article.published_revision
    if article.status != Article.Status.PUBLISHED or revision is None:
        with transaction.atomic():
            Chunk.objects.filter(article_id=article_id).delete()
            Article.objects.filter(pk=article_id).update(index_state=Article.IndexState.NOT_INDEXED, index_error="")
        return 0
    Article.objects.filter(pk=article_id).update(index_state=Article.IndexState.INDEXING)
    try:
        pieces = chunk_article(title=revision.title, body=revision.body)
        model = embedder()
        vectors = model.embed([embedding_text(piece.heading_path, piece.text) for piece in pieces])
    except Exception as error:
        Article.objects.filter(pk=article_id).update(index_state=Article.IndexState.FAILED, index_error=str(error))
        raise
    config = search_config_for(revision.language)
    with transaction.atomic():
        current = Article.objects.select_for_update().get(pk=article_id)
        if current.published_revision_id != revision.pk or current.status != Article.Status.PUBLISHED:
            logger.info("knowledge: article %s changed while indexing; its own job indexes it", article_id)
            return 0
        Chunk.objects.filter(article_id=article_id).delete()
        _chunks_insert(article_id, revision, pieces, vectors, config=config, model_name=model.name)
        Article.objects.filter(pk=article_id).update(
            index_state=Article.IndexState.INDEXED, index_error="", indexed_at=timezone.now()
        )
    return len(pieces)


_CHUNK_INSERT = (
    "INSERT INTO knowledge_chunk (article_id, revision_id, position, heading_path, text, language, search_config, "
    "embedding, embedding_model, search_vector) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::vector, %s, "
    "setweight(to_tsvector(%s::regconfig, %s), 'A') || setweight(to_tsvector(%s::regconfig, %s), 'B'))"
)


def _chunks_insert(article_id: int, revision, pieces, vectors, *, config: str, model_name: str) -> None:
    """The chunks with their full-text vector in the same INSERT: a later UPDATE of the vector would write a
    second version of every row, and enter each one into the HNSW and GIN indexes twice."""
    rows = []
    for piece, vector in zip(pieces, vectors, strict=True):
        heading = piece.heading_path[:500]
        embedding = "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
        rows.append(
            [article_id, revision.pk, piece.position, heading, piece.text, revision.language, config, embedding]
            + [model_name, config, heading, config, piece.text]
        )
    with connection.cursor() as cursor:
        cursor.executemany(_CHUNK_INSERT, rows)


def search_vectors_update(*, article_id: int | None = None) -> None:
    """Write the full-text vectors: headings weigh more (A) than the text (B), in each chunk's language."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE knowledge_chunk SET search_vector = "
            "setweight(to_tsvector(search_config::regconfig, heading_path), 'A') || "
            "setweight(to_tsvector(search_config::regconfig, text), 'B') "
            "WHERE %s::bigint IS NULL OR article_id = %s::bigint",
            [article_id, article_id],
        )


def articles_to_reindex(*, everything: bool = False) -> list[int]:
    """Published articles whose index is missing, failed, or made by another embedding model (all if asked)."""
    published = Article.objects.filter(status=Article.Status.PUBLISHED, published_revision__isnull=False)
    if everything:
        return list(published.values_list("pk", flat=True))
    stale = Chunk.objects.exclude(embedding_model=embedder().name).values("article_id")
    return list(
        published.filter(
            Q(index_state__in=[Article.IndexState.PENDING, Article.IndexState.FAILED, Article.IndexState.NOT_INDEXED])
            | Q(pk__in=stale)
        )
        .distinct()
        .values_list("pk", flat=True)
    )


def reindex_job_run(job: ReindexJob, *, on_progress: Callable[[ReindexJob], None] | None = None) -> ReindexJob:
    """Index the job's article, or every article that needs it, updating the job's progress as it goes.
    An article that fails is recorded and the others still run; the job fails if any did."""
    ids = [job.article_id] if job.article_id else articles_to_reindex(everything=job.reason == REINDEX_EVERYTHING)
    ReindexJob.objects.filter(pk=job.pk).update(state=ReindexJob.State.RUNNING, total=len(ids), done=0)
    job.refresh_from_db()
    errors = []
    for article_id in ids:
        try:
            index_article(article_id)
        except Article.DoesNotExist:
            pass  # deleted meanwhile: nothing to index
        except Exception as error:  # noqa: BLE001 — recorded on the article and the job; the others go on
            logger.exception("knowledge: indexing article %s failed", article_id)
            errors.append(f"article {article_id}: {error}")
        job.done += 1
        ReindexJob.objects.filter(pk=job.pk).update(done=job.done)
        if on_progress:
            on_progress(job)
    job.state = ReindexJob.State.FAILED if errors else ReindexJob.State.DONE
    job.error = "\n".join(errors)
    job.finished_at = timezone.now()
    # an update, not save(): a job whose article was deleted meanwhile is gone, and that is fine
    ReindexJob.objects.filter(pk=job.pk).update(state=job.state, error=job.error, finished_at=job.finished_at)
    return job
