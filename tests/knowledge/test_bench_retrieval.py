"""`manage.py bench_retrieval`: a synthetic corpus in a database of its own, the hybrid query timed, recall
measured; and the full-text leg it times (every match of a rare word ranked, common words capped).

The command runs as a real process, on a database named per test run, with a development database that
does not even exist: a run that opened it would fail.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from knowledge.indexing import search_vectors_update
from knowledge.models import Chunk
from knowledge.retrieval import TEXT_MATCHES_PER_WORD, _text_matches

ROOT = Path(__file__).resolve().parents[2]
FIGURES = {"build_s", "build", "p50_ms", "p95_ms", "mean_ms", "recall_at_10", "legs_ms", "text_matches", "on_topic"}
PARAMETERS = {"chunks", "queries", "m", "ef_construction", "ef_search", "candidates", "maintenance_work_mem", "seed"}


def unreachable_default_database() -> str:
    """A DATABASE_URL on the real server naming a database that does not exist."""
    database = settings.DATABASES["default"]
    credentials = f"{quote(database['USER'] or '', safe='')}:{quote(database.get('PASSWORD') or '', safe='')}"
    host = quote(database["HOST"] or "localhost", safe="")
    return f"postgres://{credentials}@{host}:{database['PORT'] or 5432}/alfred_no_such_development_database"


def bench(*args: str, database: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "alfred.test_settings",
        "DATABASE_URL": unreachable_default_database(),
        "DEBUG": "1",  # development keys with a DATABASE_URL
    }
    return subprocess.run(
        [sys.executable, "manage.py", "bench_retrieval", "--bench-database", database, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def database_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return cursor.fetchone() is not None


@pytest.mark.slow
@pytest.mark.django_db
def test_a_small_run_reports_sane_figures_and_leaves_no_database_behind(tmp_path):
    database = f"alfred_bench_test_{os.getpid()}"
    out = tmp_path / "bench.json"

    process = bench("--chunks", "2000", "--queries", "20", "--json", str(out), database=database)

    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert set(result) >= FIGURES | {"parameters"}
    assert set(result["parameters"]) >= PARAMETERS
    assert result["parameters"]["chunks"] == 2000 and result["parameters"]["queries"] == 20
    assert result["build_s"] > 0 and result["build_s"] >= result["build"]["hnsw_s"] > 0
    assert 0 < result["p50_ms"] <= result["p95_ms"]
    assert 0 <= result["recall_at_10"] <= 1
    assert result["recall_at_10"] >= 0.9  # 2,000 vectors and ef_search 100: HNSW is all but exact
    assert result["exact_check"] == 1.0  # numpy's exact neighbours are the database's: ids line up
    assert 0 < result["text_matches"]["p50"] <= result["text_matches"]["p100"] <= 2000
    assert "recall@10" in process.stdout and "m / ef_construction" in process.stdout  # the table is printed
    assert not database_exists(database)


def test_a_database_name_that_could_be_in_use_is_refused():
    with pytest.raises(CommandError, match="alfred_bench"):
        call_command("bench_retrieval", "--bench-database", "alfred")


# --- The full-text leg ----------------------------------------------------------------------------------------


@pytest.fixture
def passages(make_article):
    """Chunks of a published article: `common` in 30 of them, `zebra` in 3 (one of which has it twice)."""
    article = make_article("passages", publish=True)
    texts = [f"Passage {n} about the common appointment." for n in range(30)]
    texts[3] += " A zebra."
    texts[17] += " A zebra, a second zebra."
    texts[28] += " Zebra."
    Chunk.objects.bulk_create(
        Chunk(
            article=article,
            revision_id=article.revisions.get().pk,
            position=n,
            text=text,
            language="en",
            search_config="english",
            embedding=[1.0] * 384,
            embedding_model="test",
        )
        for n, text in enumerate(texts)
    )
    search_vectors_update(article_id=article.pk)
    return {text: pk for pk, text in Chunk.objects.values_list("pk", "text")}


def ranked_matches(query: str) -> list[int]:
    """Every match of the OR-query, by ts_rank_cd: what the full-text leg returned before the cap."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM knowledge_chunk, to_tsquery('english', %s) AS q(query) WHERE search_vector @@ q.query "
            "ORDER BY ts_rank_cd(search_vector, q.query) DESC, id",
            [query],
        )
        return [row[0] for row in cursor.fetchall()]


def test_rare_words_are_ranked_exactly_as_without_the_cap(passages):
    with connection.cursor() as cursor:
        found = _text_matches(cursor, "Zebra? 5!", "en", 40)

    assert found == ranked_matches("zebra | 5")  # no word has more than TEXT_MATCHES_PER_WORD matches
    assert len(found) == 4
    assert found[0] == passages["Passage 17 about the common appointment. A zebra, a second zebra."]


def test_a_common_word_brings_a_capped_number_of_matches_and_never_hides_a_rare_one(passages):
    with connection.cursor() as cursor:
        found = _text_matches(cursor, "common zebra", "en", 40)

    zebras = [pk for text, pk in passages.items() if "ebra" in text]
    assert len(found) == len(set(found)) <= TEXT_MATCHES_PER_WORD + len(zebras) < len(passages)
    assert set(zebras) <= set(found)
    assert found == [pk for pk in ranked_matches("common | zebra") if pk in found]  # ts_rank_cd order
