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
TEXT_MATCHES_PER_WORD = 20  # matches of one word that are ranked, at most (see _text_matches)
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
    model = embedder()
    return search_by_vector(query, model.embed([query])[0], model_name=model.name, language=language, limit=limit)


def search_by_vector(
    query: str, vector: list[float], *, model_name: str, language: str | None = None, limit: int | None = None
) -> list[Hit]:
    """`search` with the question already embedded (by the model `model_name`): the database part and the
    fusion, which the retrieval benchmark (knowledge/benchmark.py) times with vectors of its own."""
    limit = limit or settings.KNOWLEDGE_RESULTS
    candidates = max(settings.KNOWLEDGE_CANDIDATES, limit)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(settings.KNOWLEDGE_EF_SEARCH, candidates)])
        vector_ids = _nearest(cursor, vector, model_name, candidates)
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


def is_relevant(hit: Hit) -> bool:
    """Worth answering from: close in meaning to the question, or matched by its words and not far off.
    (The nearest chunk always exists; without this, every question would get an answer.)"""
    if hit.similarity >= settings.KNOWLEDGE_MIN_SIMILARITY:
        return True
    return hit.text_rank is not None and hit.similarity >= settings.KNOWLEDGE_MIN_SIMILARITY_WITH_WORDS


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
    return " | ".join(_query_words(query))


def _query_words(query: str) -> list[str]:
    return list(dict.fromkeys(_WORD.findall(query.lower())))[:MAX_QUERY_WORDS]


def _text_matches(cursor, query: str, language: str | None, limit: int) -> list[int]:
    """Full-text matches ranked by cover density, the question parsed in its language and in English
    (the chunks' vectors are stemmed in their own language; matching either stemming finds them).

    Any word may match (OR), and ts_rank_cd orders the matches, but not all of them are ranked: each word
    brings at most TEXT_MATCHES_PER_WORD of its matches (a rare word all of them). Ranking reads every
    ranked row's vector, and a common word matches most chunks: ranking them all took 0.2–0.9 s at 100,000
    chunks (docs/performance.md, "Retrieval benchmark"). Each word is a subquery of its own, so the
    planner costs each by that word's frequency."""
    words = _query_words(query)
    if not words:
        return []
    config = search_config_for(language or "en")
    configs = [config] if config == "english" else [config, "english"]  # English twice: same rank, twice the work
    parsed = " || ".join(["to_tsquery(%s::regconfig, %s)"] * len(configs))
    # Only constant fragments are put together here: the words are bound parameters.
    one_word = f"(SELECT id FROM knowledge_chunk WHERE search_vector @@ ({parsed}) LIMIT %s)"  # noqa: S608
    params = [value for name in configs for value in (name, " | ".join(words))]
    for word in words:
        params += [*(value for name in configs for value in (name, word)), TEXT_MATCHES_PER_WORD]
    cursor.execute(
        f"SELECT c.id FROM knowledge_chunk c, (SELECT {parsed}) AS q(query) "  # noqa: S608
        f"WHERE c.id IN ({' UNION ALL '.join([one_word] * len(words))}) "
        "ORDER BY ts_rank_cd(c.search_vector, q.query) DESC, c.id LIMIT %s",
        [*params, limit],
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
