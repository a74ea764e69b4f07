"""Hybrid retrieval: HNSW cosine neighbours and full-text matches, merged by reciprocal rank fusion.

Only chunks of the published revision of published articles are returned (drafts and archived articles have
no chunks, and the final read checks again). Chunks in the person's language are preferred; others stay
as a fallback with a lower weight. Every hit carries its cosine similarity to the question, so callers can
tell a relevant passage from the nearest irrelevant one.
"""

import re
from dataclasses import asdict, dataclass

from django.conf import settings
from django.db import connection, transaction

from knowledge.embeddings import embedder
from knowledge.indexing import search_config_for

RRF_K = 60  # the usual constant of reciprocal rank fusion
OTHER_LANGUAGE_WEIGHT = 0.5  # a chunk in another language than the question's counts half
MAX_QUERY_WORDS = 32
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    article_id: int
    slug: str
    title: str
    language: str
    heading_path: str
    text: str
    score: float  # fused score (higher is better)
    similarity: float  # cosine similarity between the question and the chunk
    vector_rank: int | None  # 1-based rank among the neighbours, None if not among them
    text_rank: int | None  # 1-based rank among the full-text matches

    def as_dict(self) -> dict:
        return asdict(self)


def search(query: str, *, language: str | None = None, limit: int | None = None) -> list[Hit]:
    """The best chunks for a question, best first."""
    query = " ".join(query.split())[:2000]
    if not query:
        return []
    limit = limit or settings.KNOWLEDGE_RESULTS
    candidates = max(settings.KNOWLEDGE_CANDIDATES, limit)
    model = embedder()
    vector = model.embed([query])[0]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(settings.KNOWLEDGE_EF_SEARCH, candidates)])
        vector_ids = _nearest(cursor, vector, model.name, candidates)
        text_ids = _text_matches(cursor, query, language, candidates)
        rows = _published_chunks(cursor, set(vector_ids) | set(text_ids), vector)
    vector_rank = {chunk_id: rank for rank, chunk_id in enumerate(vector_ids, 1)}
    text_rank = {chunk_id: rank for rank, chunk_id in enumerate(text_ids, 1)}
    hits = []
    for row in rows:
        chunk_id, article_id, slug, title, chunk_language, heading_path, text, similarity = row
        score = sum(1 / (RRF_K + ranks[chunk_id]) for ranks in (vector_rank, text_rank) if chunk_id in ranks)
        if language and chunk_language.split("-")[0] != language.split("-")[0]:
            score *= OTHER_LANGUAGE_WEIGHT
        hits.append(
            Hit(
                chunk_id=chunk_id,
                article_id=article_id,
                slug=slug,
                title=title,
                language=chunk_language,
                heading_path=heading_path,
                text=text,
                score=round(score, 6),
                similarity=round(float(similarity), 4),
                vector_rank=vector_rank.get(chunk_id),
                text_rank=text_rank.get(chunk_id),
            )
        )
    hits.sort(key=lambda hit: (-hit.score, -hit.similarity, hit.chunk_id))
    return hits[:limit]


def _nearest(cursor, vector: list[float], model_name: str, limit: int) -> list[int]:
    """Approximate nearest neighbours by cosine distance (HNSW), among vectors of the current model."""
    cursor.execute(
        "SELECT id FROM knowledge_chunk WHERE embedding_model = %s ORDER BY embedding <=> %s::vector LIMIT %s",
        [model_name, _vector_literal(vector), limit],
    )
    return [row[0] for row in cursor.fetchall()]


def tsquery_text(query: str) -> str:
    """The question's words joined by OR (`|`) for to_tsquery: any word may match, ranking sorts it out.
    Only letters and digits reach PostgreSQL's query parser, so no input can break the query syntax."""
    words = list(dict.fromkeys(_WORD.findall(query.lower())))[:MAX_QUERY_WORDS]
    return " | ".join(words)


def _text_matches(cursor, query: str, language: str | None, limit: int) -> list[int]:
    """Full-text matches ranked by cover density, the question parsed in its language and in English
    (the chunks' vectors are stemmed in their own language; matching either stemming finds them)."""
    text = tsquery_text(query)
    if not text:
        return []
    cursor.execute(
        "SELECT id FROM knowledge_chunk, "
        "(SELECT to_tsquery(%s::regconfig, %s) || to_tsquery('english', %s)) AS q(query) "
        "WHERE search_vector @@ q.query ORDER BY ts_rank_cd(search_vector, q.query) DESC, id LIMIT %s",
        [search_config_for(language or "en"), text, text, limit],
    )
    return [row[0] for row in cursor.fetchall()]


def _published_chunks(cursor, chunk_ids: set[int], vector: list[float]) -> list[tuple]:
    if not chunk_ids:
        return []
    cursor.execute(
        "SELECT c.id, a.id, a.slug, r.title, c.language, c.heading_path, c.text, 1 - (c.embedding <=> %s::vector) "
        "FROM knowledge_chunk c JOIN knowledge_article a ON a.id = c.article_id "
        "JOIN knowledge_articlerevision r ON r.id = c.revision_id "
        "WHERE c.id = ANY(%s) AND a.status = 'published' AND c.revision_id = a.published_revision_id",
        [_vector_literal(vector), list(chunk_ids)],
    )
    return cursor.fetchall()


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
