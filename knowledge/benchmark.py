"""The retrieval benchmark: hybrid search timed on a synthetic corpus in a database of its own.

`manage.py bench_retrieval` creates a scratch database (`alfred.scratch_database`) with N chunks in
published articles of ten chunks, whose vectors and words look like real ones in the ways that matter:

- vectors: a topic mixture. Topic centroids lie on a low-dimensional subspace and group into domains; a
  chunk is its topic's centroid, partly mixed with a sibling topic, plus noise, plus the direction every
  embedding shares, plus a language offset for French; normalized. Neighbourhoods are clustered like
  those of real embeddings (i.i.d. noise would be a far harder, unrealistic case for HNSW).
- words: English and French pseudo-words, so the stemmers work on them, drawn with Zipf frequencies: real
  stop words, a global vocabulary and a vocabulary per topic. Common words match most chunks, rare ones a
  handful: the OR-queries of the full-text leg range from very selective to matching nearly everything.

Rows are loaded with a binary COPY, the full-text vectors written by `search_vectors_update`, the tables
vacuumed and analyzed (as autovacuum would have done by the time anyone searches), and the HNSW and GIN
indexes of the model built afterwards with the given parameters. The timed query is
`retrieval.search_by_vector`, the very code `retrieval.search` runs after embedding the question.
Recall@10 compares the vector leg (`retrieval._nearest`) with exact neighbours computed by numpy, which
is cross-checked against the same query run with index scans disabled.
"""

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
from django.conf import settings
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import override_settings
from pgvector.django import HnswIndex
from pgvector.psycopg import register_vector

from alfred.scratch_database import ScratchDatabase
from knowledge.embeddings import EMBEDDING_DIMENSIONS
from knowledge.indexing import search_config_for, search_vectors_update
from knowledge.models import Article, ArticleRevision, Chunk
from knowledge.retrieval import _nearest, _text_matches, search_by_vector, tsquery_text

logger = logging.getLogger(__name__)
DEFAULT_DATABASE = "alfred_bench"
MODEL_NAME = "benchmark/synthetic-topics"
HNSW_INDEX = "knowledge_chunk_embedding_hnsw"
GIN_INDEX = "knowledge_chunk_search_gin"
TOPICS = 300  # "a few hundred" subjects in a knowledge base
DOMAINS = 30  # topics group into domains (billing, calendars…): sibling topics are near each other
LATENT_DIMENSIONS = 48  # real sentence embeddings have a low intrinsic dimension
SIBLINGS = 8
LANGUAGES = {"en": 0.7, "fr": 0.3}  # share of the chunks (and of the questions)
CHUNKS_PER_ARTICLE = 10  # an article of a few screens; chunks are ≤ 800 characters
VOCABULARY = 15_000  # content words per language
TOPIC_WORDS = 120
CHUNK_WORDS = (60, 130)  # chunking.MAX_CHARS = 800 characters
EXACT_CHECKS = 5  # queries whose exact neighbours are also computed by PostgreSQL
STOP_WORDS = {
    "en": "the of and to a in is you it that for on are with as be this your can or by at from an not",
    "fr": "le la de et les des un une en du est pour que qui dans vous sur par pas au ne il se ce avec",
}
SYLLABLES = {
    "en": (
        "b c d f g h l m n p r s t v w br cl st tr pl gr sh ch th",
        "a e i o u ea ou ai oa",
        ["", "", "n", "r", "s", "t", "l", "nd", "st", "ck"],
        ["", "", "", "ing", "ed", "s", "tion", "ment", "er", "ly"],
    ),
    "fr": (
        "b c d f g j l m n p r s t v ch pr tr gr qu",
        "a e i o u é è ou oi ai au eu an on",
        ["", "", "", "n", "r", "s", "l"],
        ["", "", "", "ment", "tion", "ette", "eur", "ique", "é", "er", "es"],
    ),
}


@dataclass(frozen=True)
class Parameters:
    chunks: int = 100_000
    queries: int = 200
    m: int = 16
    ef_construction: int = 64
    ef_search: int = 100
    candidates: int = 40
    maintenance_work_mem: str = "512MB"
    parallel_workers: int = 2  # max_parallel_maintenance_workers for the index builds
    warmup: int = 20  # queries run before the timed ones (caches, connection)
    seed: int = 1


@dataclass
class Corpus:
    """Row i is the chunk of id i + 1, in article i // CHUNKS_PER_ARTICLE at position i % CHUNKS_PER_ARTICLE."""

    vectors: np.ndarray  # (n, 384) float32, unit length
    topics: np.ndarray  # its article's topic
    languages: np.ndarray  # "en" / "fr", its article's language
    headings: list[str]
    texts: list[str]
    article_titles: list[str]


@dataclass(frozen=True)
class Question:
    text: str
    language: str
    vector: np.ndarray
    topic: int


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


class _Space:
    """Where the vectors come from: topic centroids on a subspace, grouped in domains."""

    def __init__(self, rng: np.random.Generator):
        self.basis = np.linalg.qr(rng.standard_normal((EMBEDDING_DIMENSIONS, LATENT_DIMENSIONS)))[0]
        domains = _unit(rng.standard_normal((DOMAINS, LATENT_DIMENSIONS)))
        domain_of = rng.integers(DOMAINS, size=TOPICS)
        self.centroids = _unit(domains[domain_of] + 0.6 * _unit(rng.standard_normal((TOPICS, LATENT_DIMENSIONS))))
        members = [np.flatnonzero(domain_of == domain) for domain in range(DOMAINS)]
        self.siblings = np.stack([rng.choice(members[domain], SIBLINGS) for domain in domain_of])
        self.common, self.french = _unit(rng.standard_normal((2, EMBEDDING_DIMENSIONS)))

    def vectors(self, rng, topics: np.ndarray, french: np.ndarray, noise: float) -> np.ndarray:
        count = len(topics)
        sibling = self.siblings[topics, rng.integers(SIBLINGS, size=count)]
        share = rng.beta(2, 5, size=(count, 1))  # how much a passage is about the neighbouring topic
        latent = (1 - share) * self.centroids[topics] + share * self.centroids[sibling]
        latent += rng.standard_normal((count, LATENT_DIMENSIONS)) * noise / np.sqrt(LATENT_DIMENSIONS)
        ambient = rng.standard_normal((count, EMBEDDING_DIMENSIONS)) * 0.35 / np.sqrt(EMBEDDING_DIMENSIONS)
        vectors = latent @ self.basis.T + 0.5 * self.common + 0.3 * french[:, None] * self.french + ambient
        return _unit(vectors).astype(np.float32)


class _Words:
    """One language's words: stop words, then content words from the most to the least frequent."""

    def __init__(self, rng: np.random.Generator, language: str):
        self.stop = STOP_WORDS[language].split()
        self.content = _pseudo_words(rng, language, VOCABULARY)
        self.global_p = _zipf(VOCABULARY)
        # a topic's own words are mid-frequency and rare words; the common ones belong to every topic
        self.topic_words = np.stack(
            [rng.choice(np.arange(200, VOCABULARY), TOPIC_WORDS, replace=False) for _ in range(TOPICS)]
        )
        self.topic_p = _zipf(TOPIC_WORDS)

    def draw(self, rng, topics: np.ndarray, lengths: np.ndarray, shares: tuple[float, float]) -> list[str]:
        """Texts of `lengths[i]` words about `topics[i]`: stop words, topic words, global words."""
        total = int(lengths.sum())
        topic_of = np.repeat(topics, lengths)
        kind = rng.random(total)
        words = np.empty(total, dtype=np.int64)  # < 0: stop word, else index into self.content
        stop = kind < shares[0]
        words[stop] = -1 - rng.integers(len(self.stop), size=int(stop.sum()))
        own = (kind >= shares[0]) & (kind < shares[0] + shares[1])
        words[own] = self.topic_words[topic_of[own], rng.choice(TOPIC_WORDS, size=int(own.sum()), p=self.topic_p)]
        common = kind >= shares[0] + shares[1]
        words[common] = rng.choice(VOCABULARY, size=int(common.sum()), p=self.global_p)
        vocabulary = self.content + self.stop[::-1]  # index -1 is the first stop word, and so on
        ends = np.cumsum(lengths)
        return [
            " ".join(vocabulary[w] for w in words[end - n : end].tolist()) for end, n in zip(ends, lengths, strict=True)
        ]


def _zipf(size: int, exponent: float = 1.0) -> np.ndarray:
    weights = 1 / np.arange(1, size + 1) ** exponent
    return weights / weights.sum()


def _pseudo_words(rng: np.random.Generator, language: str, count: int) -> list[str]:
    onsets, vowels, codas, endings = SYLLABLES[language]
    onsets, vowels = onsets.split(), vowels.split()
    words: dict[str, None] = {}
    while len(words) < count:
        syllables = rng.integers(1, 4)
        word = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables))
        words.setdefault(word + rng.choice(codas) + rng.choice(endings), None)
    return list(words)


def corpus_build(size: int, *, rng: np.random.Generator, space: _Space, words: dict[str, _Words]) -> Corpus:
    """`size` chunks in articles of CHUNKS_PER_ARTICLE; an article is about one topic, in one language."""
    articles = -(-size // CHUNKS_PER_ARTICLE)
    article_topics = rng.integers(TOPICS, size=articles)
    article_languages = rng.choice(list(LANGUAGES), size=articles, p=list(LANGUAGES.values()))
    of_article = np.arange(size) // CHUNKS_PER_ARTICLE
    topics, languages = article_topics[of_article], article_languages[of_article]
    vectors = np.concatenate(
        [
            space.vectors(rng, topics[start : start + 20_000], languages[start : start + 20_000] == "fr", noise=0.8)
            for start in range(0, size, 20_000)
        ]
    )
    lengths = rng.integers(*CHUNK_WORDS, size=size)
    headings, texts, titles = [""] * size, [""] * size, [""] * articles
    for language, vocabulary in words.items():
        in_language = np.flatnonzero(article_languages == language)
        named = vocabulary.draw(rng, article_topics[in_language], np.full(len(in_language), 3), shares=(0, 1))
        for article, title in zip(in_language.tolist(), named, strict=True):
            titles[article] = title.capitalize()
        rows = np.flatnonzero(languages == language)
        drawn = vocabulary.draw(rng, topics[rows], lengths[rows], shares=(0.4, 0.3))
        sections = vocabulary.draw(rng, topics[rows], np.full(len(rows), 3), shares=(0.2, 0.8))
        for row, text, section in zip(rows.tolist(), drawn, sections, strict=True):
            texts[row] = text
            headings[row] = f"{titles[of_article[row]]} › {section.capitalize()}"
    return Corpus(vectors, topics, languages, headings, texts, titles)


def questions_build(count: int, *, rng, space: _Space, words: dict[str, _Words]) -> list[Question]:
    """Questions: new samples of the topics (not chunks of the corpus), a few words each."""
    topics = rng.integers(TOPICS, size=count)
    languages = rng.choice(list(LANGUAGES), size=count, p=list(LANGUAGES.values()))
    vectors = space.vectors(rng, topics, languages == "fr", noise=0.9)
    lengths = rng.integers(5, 13, size=count)
    texts = [""] * count
    for language, vocabulary in words.items():
        rows = np.flatnonzero(languages == language)
        for row, text in zip(
            rows.tolist(), vocabulary.draw(rng, topics[rows], lengths[rows], shares=(0.35, 0.4)), strict=True
        ):
            texts[row] = text
    return [Question(texts[i], str(languages[i]), vectors[i], int(topics[i])) for i in range(count)]


def run(parameters: Parameters, *, database: str = DEFAULT_DATABASE, progress: Callable[[str], None] = print) -> dict:
    """Build the corpus in a scratch database, time the hybrid query, measure recall; the database is dropped."""
    rng = np.random.default_rng(parameters.seed)
    space = _Space(rng)
    words = {language: _Words(rng, language) for language in LANGUAGES}
    progress(f"Generating {parameters.chunks} chunks and {parameters.queries} questions")
    corpus = corpus_build(parameters.chunks, rng=rng, space=space, words=words)
    questions = questions_build(parameters.warmup + parameters.queries, rng=rng, space=space, words=words)
    scratch = ScratchDatabase(database)
    progress(f"Creating the database {database}")
    scratch.create()
    try:
        build = _build(corpus, parameters, progress)
        progress(f"Timing {parameters.queries} hybrid queries")
        result = {**build, **_measure(corpus, questions, parameters)}
    finally:
        scratch.destroy()
    result["server"]["load_average_end"] = list(os.getloadavg())  # the machine's, other people's work included
    return {"parameters": _reported(parameters), **result}


def _reported(parameters: Parameters) -> dict:
    return {
        **asdict(parameters),
        "ef_search": max(parameters.ef_search, parameters.candidates),  # what retrieval.search applies
        "topics": TOPICS,
        "dimensions": EMBEDDING_DIMENSIONS,
    }


def _build(corpus: Corpus, parameters: Parameters, progress: Callable[[str], None]) -> dict:
    """Articles, then the chunks without their HNSW and GIN indexes, then the indexes: `build_s` is it all."""
    steps: dict[str, float] = {}
    progress("Creating the articles")
    articles, steps["articles_s"] = _timed(_articles_create, corpus)
    with connection.schema_editor() as editor:
        for index in _model_indexes(parameters):
            editor.remove_index(Chunk, index)
    progress("Loading the chunks (binary COPY)")
    steps["load_s"] = _timed(_chunks_copy, corpus, articles)[1]
    progress("Writing the full-text vectors (search_vectors_update)")
    steps["search_vectors_s"] = _timed(_search_vectors_write, [article for article, _ in articles])[1]
    steps["vacuum_analyze_s"] = _timed(
        _sql, "VACUUM ANALYZE knowledge_chunk, knowledge_article, knowledge_articlerevision"
    )[1]
    progress(
        f"Building the HNSW index (m={parameters.m}, ef_construction={parameters.ef_construction}) and the GIN index"
    )
    steps.update(_indexes_build(parameters))
    return {
        "build_s": round(sum(steps.values()), 2),
        "build": {name: round(seconds, 2) for name, seconds in steps.items()},
        "checkpoint_s": _checkpoint(),
        **_sizes(),
    }


def _indexes_build(parameters: Parameters) -> dict[str, float]:
    _sql("SET maintenance_work_mem = %s", [parameters.maintenance_work_mem])
    _sql("SET max_parallel_maintenance_workers = %s", [parameters.parallel_workers])
    hnsw, gin = _model_indexes(parameters)
    with connection.schema_editor(atomic=False) as editor:
        seconds = {"hnsw_s": _timed(editor.add_index, Chunk, hnsw)[1], "gin_s": _timed(editor.add_index, Chunk, gin)[1]}
    _sql("RESET maintenance_work_mem; RESET max_parallel_maintenance_workers")
    return seconds


def _sizes() -> dict:
    hnsw, gin, table, postgresql, pgvector = _sql(
        "SELECT pg_relation_size(%s) / 1048576.0, pg_relation_size(%s) / 1048576.0, "
        "pg_total_relation_size('knowledge_chunk') / 1048576.0, current_setting('server_version'), "
        "(SELECT extversion FROM pg_extension WHERE extname = 'vector')",
        [HNSW_INDEX, GIN_INDEX],
    )[0]
    return {
        "size_mb": {"hnsw": round(hnsw), "gin": round(gin), "table_total": round(table)},
        "server": {"postgresql": postgresql, "pgvector": pgvector, "load_average": list(os.getloadavg())},
    }


def _articles_create(corpus: Corpus) -> list[tuple[int, int]]:
    """The corpus' articles, published, in bulk: [(article id, published revision id)] in corpus order.
    (Through the services, ten thousand articles would take minutes and write audit rows no query reads.)"""
    first_chunks = corpus.languages[::CHUNKS_PER_ARTICLE]
    articles = Article.objects.bulk_create(
        [
            Article(
                slug=f"benchmark-{number}",
                title=title,
                language=str(language),
                status=Article.Status.PUBLISHED,
                index_state=Article.IndexState.INDEXED,
                body="Synthetic benchmark article.",
            )
            for number, (title, language) in enumerate(zip(corpus.article_titles, first_chunks, strict=True))
        ],
        batch_size=2000,
    )
    revisions = ArticleRevision.objects.bulk_create(
        [
            ArticleRevision(
                article=article, number=1, title=article.title, language=article.language, body=article.body
            )
            for article in articles
        ],
        batch_size=2000,
    )
    _sql(
        "UPDATE knowledge_article a SET published_revision_id = r.id "
        "FROM knowledge_articlerevision r WHERE r.article_id = a.id"
    )
    return [(article.pk, revision.pk) for article, revision in zip(articles, revisions, strict=True)]


def _model_indexes(parameters: Parameters) -> tuple[HnswIndex, object]:
    """The model's HNSW index with the benchmark's build parameters, and its GIN index: the same DDL."""
    indexes = {index.name: index for index in Chunk._meta.indexes}
    _, args, kwargs = indexes[HNSW_INDEX].deconstruct()
    return HnswIndex(*args, **{**kwargs, "m": parameters.m, "ef_construction": parameters.ef_construction}), indexes[
        GIN_INDEX
    ]


def _chunks_copy(corpus: Corpus, articles: list[tuple[int, int]]) -> None:
    """The chunks with their ids (row i is chunk i + 1: exact neighbours computed by numpy are ids)."""
    rows = np.arange(len(corpus.texts))
    owners = np.column_stack([np.array(articles)[rows // CHUNKS_PER_ARTICLE], rows % CHUNKS_PER_ARTICLE])
    connection.ensure_connection()
    register_vector(connection.connection)  # numpy arrays as binary vectors
    columns = (
        "id, article_id, revision_id, position, heading_path, text, language, search_config, embedding, embedding_model"
    )
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY knowledge_chunk ({columns}) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int8", "int8", "int4", "text", "text", "text", "text", "vector", "text"])
            configs = {language: search_config_for(language) for language in LANGUAGES}
            for row, (article, revision, position) in enumerate(owners.tolist()):
                language = str(corpus.languages[row])
                copy.write_row(
                    (
                        row + 1,
                        article,
                        revision,
                        position,
                        corpus.headings[row],
                        corpus.texts[row],
                        language,
                        configs[language],
                        corpus.vectors[row],
                        MODEL_NAME,
                    )
                )
        cursor.execute("SELECT setval(pg_get_serial_sequence('knowledge_chunk', 'id'), %s)", [len(corpus.texts)])
    connection.close()  # the connections that follow speak to PostgreSQL as the application does


def _search_vectors_write(article_ids: list[int]) -> None:
    """`search_vectors_update` per article, on one connection per core, one transaction each (a commit per
    article would make the build time mostly WAL flushes)."""
    workers = max(1, min(os.cpu_count() or 1, len(article_ids)))

    def write(ids: list[int]) -> None:
        try:
            with transaction.atomic():
                for article_id in ids:
                    search_vectors_update(article_id=article_id)
        finally:
            connections.close_all()  # this thread's connection, or the database could not be dropped

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(write, [article_ids[start::workers] for start in range(workers)]))


def _checkpoint() -> float | None:
    """Write the build's dirty pages now (not part of build_s). Otherwise the server flushes the ~800 MB while
    the first queries are timed, and they measure the disks. Needs a superuser or pg_checkpoint."""
    try:
        return round(_timed(_sql, "CHECKPOINT")[1], 2)
    except DatabaseError as error:
        logger.warning("benchmark: no CHECKPOINT before timing", extra={"error": str(error)})
        return None


def _sql(statement: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def _timed(function: Callable, *args, **kwargs) -> tuple:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def _measure(corpus: Corpus, questions: list[Question], parameters: Parameters) -> dict:
    """Hybrid query latency, each leg's latency, full-text selectivity, recall@10 of the vector leg, and
    how many hits are on the question's topic (a relevance proxy: the corpus knows every chunk's topic)."""
    warmup, timed = questions[: parameters.warmup], questions[parameters.warmup :]
    with override_settings(KNOWLEDGE_EF_SEARCH=parameters.ef_search, KNOWLEDGE_CANDIDATES=parameters.candidates):
        for question in warmup:
            _hybrid(question)
        hybrid = [_timed(_hybrid, question) for question in timed]
    legs = [_legs(question, parameters) for question in timed]
    exact = _exact_neighbours(corpus.vectors, np.stack([question.vector for question in timed]))
    return {
        **_percentiles([seconds for _, seconds in hybrid]),
        "recall_at_10": round(
            float(np.mean([len(set(leg["nearest"][:10]) & set(e)) / 10 for leg, e in zip(legs, exact, strict=True)])), 4
        ),
        "legs_ms": {name: _percentiles([leg[name] for leg in legs]) for name in ("vector", "text")},
        "text_matches": {f"p{q}": int(np.percentile([leg["matches"] for leg in legs], q)) for q in (50, 95, 100)},
        "on_topic": {
            "hybrid_at_5": _on_topic(corpus, timed, [[hit.chunk_id for hit in hits] for hits, _ in hybrid]),
            "text_at_10": _on_topic(corpus, timed, [leg["text_ids"][:10] for leg in legs]),
            "vector_at_10": _on_topic(corpus, timed, [leg["nearest"][:10] for leg in legs]),
        },
        "exact_check": _exact_check(timed[:EXACT_CHECKS], exact[:EXACT_CHECKS]),
    }


def _hybrid(question: Question) -> list:
    return search_by_vector(question.text, question.vector.tolist(), model_name=MODEL_NAME, language=question.language)


def _legs(question: Question, parameters: Parameters) -> dict:
    """Each leg of `search_by_vector` on its own, timed, in a transaction set up as search_by_vector sets it."""
    candidates = max(parameters.candidates, settings.KNOWLEDGE_RESULTS)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [max(parameters.ef_search, candidates)])
        nearest, vector_s = _timed(_nearest, cursor, question.vector.tolist(), MODEL_NAME, candidates)
        text_ids, text_s = _timed(_text_matches, cursor, question.text, question.language, candidates)
        matches = _match_count(cursor, question.text, question.language)
    return {"nearest": nearest, "vector": vector_s, "text_ids": text_ids, "text": text_s, "matches": matches}


def _on_topic(corpus: Corpus, questions: list[Question], results: list[list[int]]) -> float | None:
    """The share of returned chunks (ids) that are about the question's topic."""
    flags = [
        corpus.topics[chunk_id - 1] == question.topic
        for question, ids in zip(questions, results, strict=True)
        for chunk_id in ids
    ]
    return round(float(np.mean(flags)), 3) if flags else None


def _percentiles(seconds: list[float]) -> dict:
    p50, p95 = np.percentile(seconds, [50, 95]) * 1000
    return {
        "p50_ms": round(float(p50), 2),
        "p95_ms": round(float(p95), 2),
        "mean_ms": round(float(np.mean(seconds)) * 1000, 2),
    }


def _match_count(cursor, text: str, language: str) -> int:
    """How many chunks the question's OR-query matches (what the full-text leg has to rank)."""
    words = tsquery_text(text)
    cursor.execute(
        "SELECT count(*) FROM knowledge_chunk "
        "WHERE search_vector @@ (to_tsquery(%s::regconfig, %s) || to_tsquery('english', %s))",
        [search_config_for(language), words, words],
    )
    return cursor.fetchone()[0]


def _exact_neighbours(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> list[list[int]]:
    """The k chunks of smallest cosine distance (the vectors are unit length: largest dot product), as ids."""
    similarities = queries @ vectors.T
    best = np.argpartition(-similarities, k, axis=1)[:, :k]
    return [(row + 1).tolist() for row in best]


def _exact_check(questions: list[Question], exact: list[list[int]]) -> float:
    """The vector leg's own query with index scans off (a sequential scan: exact), against numpy's answer.
    Django's psycopg cursors bind client-side and never prepare, so the setting applies to every run."""
    overlaps = []
    for question, expected in zip(questions, exact, strict=True):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            overlaps.append(len(set(_nearest(cursor, question.vector.tolist(), MODEL_NAME, 10)) & set(expected)) / 10)
    return round(float(np.mean(overlaps)), 4)


def report_table(result: dict) -> str:
    """The parameters and the figures, as a readable table."""
    parameters, build = result["parameters"], result["build"]
    rows = [
        ("chunks / queries", f"{parameters['chunks']} / {parameters['queries']} (seed {parameters['seed']})"),
        ("HNSW m / ef_construction", f"{parameters['m']} / {parameters['ef_construction']}"),
        ("ef_search / candidates", f"{parameters['ef_search']} / {parameters['candidates']}"),
        ("maintenance_work_mem / workers", f"{parameters['maintenance_work_mem']} / {parameters['parallel_workers']}"),
        ("build_s", f"{result['build_s']:.1f}  (" + ", ".join(f"{k} {v:.1f}" for k, v in build.items()) + ")"),
        ("then CHECKPOINT s", str(result["checkpoint_s"])),
        ("hybrid p50 / p95 ms", f"{result['p50_ms']:.2f} / {result['p95_ms']:.2f}  (mean {result['mean_ms']:.2f})"),
        ("vector leg p50 / p95 ms", "{p50_ms:.2f} / {p95_ms:.2f}".format(**result["legs_ms"]["vector"])),
        ("text leg p50 / p95 ms", "{p50_ms:.2f} / {p95_ms:.2f}".format(**result["legs_ms"]["text"])),
        ("text matches p50 / p95 / max", "{p50} / {p95} / {p100}".format(**result["text_matches"])),
        (
            "on topic: hybrid@5 / text@10 / vector@10",
            "{hybrid_at_5} / {text_at_10} / {vector_at_10}".format(**result["on_topic"]),
        ),
        (
            "recall@10 (vector leg)",
            f"{result['recall_at_10']:.4f}  (numpy exact = SQL exact: {result['exact_check']:.2f})",
        ),
        ("index sizes MB", "HNSW {hnsw}, GIN {gin}, table total {table_total}".format(**result["size_mb"])),
        (
            "load average",
            f"{result['server']['load_average'][0]:.2f} after the build, "
            f"{result['server']['load_average_end'][0]:.2f} at the end ({os.cpu_count()} cores)",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)
