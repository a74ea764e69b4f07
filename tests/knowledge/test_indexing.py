"""Indexing: only published revisions are chunked, embedded and searchable, in their language, by one model."""

import re

import pytest
from django.contrib.postgres.search import SearchQuery
from django.db import connection

from knowledge.embeddings import EMBEDDING_DIMENSIONS, LOCAL_MODEL_NAME, EmbeddingError
from knowledge.indexing import articles_to_reindex, index_article, reindex_job_run, search_config_for
from knowledge.models import Article, Chunk, ReindexJob
from knowledge.services import (
    ArticleContent,
    article_archive,
    article_publish,
    article_unpublish,
    article_update,
)
from knowledge.tasks import _reindex_stale_articles, reindex
from tests.knowledge.conftest import FakeEmbedder

pytestmark = pytest.mark.django_db

GUIDE = """Patients can join a waiting list when no slot suits them.

## Turn it on

Open Settings > Waiting list and tick the appointment types.

## Offers

When an appointment is cancelled, the freed slot is offered by SMS.
"""


def chunks_of(article) -> list[Chunk]:
    return list(Chunk.objects.filter(article=article).order_by("position"))


def edit(article, editor, body: str) -> None:
    content = ArticleContent(title=article.title, language=article.language, body=body, tags=tuple(article.tags))
    article_update(actor=editor, article=article, content=content)


def fresh(article) -> Article:
    return Article.objects.get(pk=article.pk)


def slugs_matching(query: str, config: str) -> set[str]:
    found = Chunk.objects.filter(search_vector=SearchQuery(query, config=config))
    return set(found.values_list("article__slug", flat=True))


# --- What is indexed -----------------------------------------------------------------------------------------


def test_a_draft_has_no_chunks(make_article):
    article = make_article(body=GUIDE)

    assert index_article(article.pk) == 0

    assert not Chunk.objects.exists()
    assert fresh(article).index_state == Article.IndexState.NOT_INDEXED


def test_publishing_indexes_the_published_revision_with_the_local_model(make_article):
    article = make_article(title="Use the waiting list", body=GUIDE, publish=True)
    assert fresh(article).index_state == Article.IndexState.PENDING

    count = index_article(article.pk)

    article = fresh(article)
    chunks = chunks_of(article)
    assert count == len(chunks) == 3
    assert [chunk.heading_path for chunk in chunks] == [
        "Use the waiting list",
        "Use the waiting list › Turn it on",
        "Use the waiting list › Offers",
    ]
    assert {chunk.revision_id for chunk in chunks} == {article.published_revision_id}
    assert {(chunk.language, chunk.search_config, chunk.embedding_model) for chunk in chunks} == {
        ("en", "english", LOCAL_MODEL_NAME)
    }
    assert all(len(chunk.embedding) == EMBEDDING_DIMENSIONS for chunk in chunks)
    assert (article.index_state, article.index_error) == (Article.IndexState.INDEXED, "")
    assert article.indexed_at is not None


def test_indexing_again_replaces_the_chunks_without_duplicates(make_article, use_embedder):
    use_embedder(FakeEmbedder())
    article = make_article(body=GUIDE, publish=True)

    index_article(article.pk)
    index_article(article.pk)

    assert [chunk.position for chunk in chunks_of(article)] == [0, 1, 2]


def test_an_edit_changes_the_chunks_only_once_published(make_article, editor, use_embedder):
    use_embedder(FakeEmbedder())
    article = make_article(body="The old way to do it.", publish=True)
    index_article(article.pk)
    first_revision = fresh(article).published_revision_id

    edit(article, editor, "The new way to do it.")
    index_article(article.pk)  # e.g. a redelivered job: still the published revision

    assert [(chunk.text, chunk.revision_id) for chunk in chunks_of(article)] == [
        ("The old way to do it.", first_revision)
    ]
    assert fresh(article).has_unpublished_changes

    article_publish(actor=editor, article=article)
    index_article(article.pk)

    article = fresh(article)
    assert article.published_revision_id != first_revision
    assert [(chunk.text, chunk.revision_id) for chunk in chunks_of(article)] == [
        ("The new way to do it.", article.published_revision_id)
    ]


@pytest.mark.parametrize("take_down", [article_archive, article_unpublish])
def test_archiving_or_unpublishing_removes_the_chunks_at_once(make_article, editor, use_embedder, take_down):
    use_embedder(FakeEmbedder())
    article = make_article(body=GUIDE, publish=True)
    index_article(article.pk)
    assert chunks_of(article)

    take_down(actor=editor, article=article)

    assert chunks_of(article) == []
    assert fresh(article).index_state == Article.IndexState.NOT_INDEXED
    assert index_article(article.pk) == 0  # a late job for the old publish adds nothing back
    assert chunks_of(article) == []
    assert article.pk not in articles_to_reindex()


# --- Full text in the article's language ---------------------------------------------------------------------


def test_a_french_article_is_searched_with_french_stemming(make_article, use_embedder):
    use_embedder(FakeEmbedder())
    article = make_article(
        "horaires-ouverture",
        title="Horaires d'ouverture",
        language="fr",
        body="Vous pouvez modifier les horaires des consultations.",
        publish=True,
    )
    index_article(article.pk)

    assert {chunk.search_config for chunk in chunks_of(article)} == {"french"}
    assert slugs_matching("horaires modifiés", "french") == {"horaires-ouverture"}
    assert slugs_matching("consultation", "french") == {"horaires-ouverture"}
    assert slugs_matching("modifiés", "simple") == set()  # only the stem makes them meet


def test_an_english_article_is_searched_with_english_stemming(make_article, use_embedder):
    use_embedder(FakeEmbedder())
    article = make_article("booking", body="Patients are booking appointments online.", publish=True)
    index_article(article.pk)

    assert {chunk.search_config for chunk in chunks_of(article)} == {"english"}
    assert slugs_matching("booked appointment", "english") == {"booking"}


def test_an_unknown_language_is_searched_word_for_word(make_article, use_embedder):
    use_embedder(FakeEmbedder())
    article = make_article("ustawienia", language="pl", body="Otwórz ustawienia kalendarza.", publish=True)
    index_article(article.pk)

    (chunk,) = chunks_of(article)
    assert (chunk.language, chunk.search_config) == ("pl", "simple")
    assert slugs_matching("ustawienia", "simple") == {"ustawienia"}


def test_heading_words_weigh_more_than_text_words(make_article, use_embedder):
    use_embedder(FakeEmbedder())
    article = make_article("weights", title="Reminders", body="## Colours\n\nPick a shade.", publish=True)
    index_article(article.pk)

    (chunk,) = chunks_of(article)
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_vector::text FROM knowledge_chunk WHERE id = %s", [chunk.pk])
        vector = cursor.fetchone()[0]
    assert re.search(r"'remind':\d+A", vector) and re.search(r"'colour':\d+A", vector)
    assert re.search(r"'shade':\d+B", vector)


@pytest.mark.parametrize(
    ("language", "config"),
    [("fr", "french"), ("FR", "french"), ("fr-CA", "french"), ("de", "german"), ("en", "english"), ("pl", "simple")],
)
def test_search_config_for(language, config):
    assert search_config_for(language) == config
    assert search_config_for("") == "simple"


# --- Which articles need indexing ----------------------------------------------------------------------------


def test_articles_to_reindex_are_published_ones_not_indexed_yet(make_article, use_embedder):
    use_embedder(FakeEmbedder())
    published = make_article("published", publish=True)
    make_article("draft")

    assert articles_to_reindex() == [published.pk]

    index_article(published.pk)

    assert articles_to_reindex() == []
    assert articles_to_reindex(everything=True) == [published.pk]


def test_a_new_embedding_model_makes_every_article_stale_and_reindexing_re_embeds(make_article, use_embedder):
    first = use_embedder(FakeEmbedder("fake/one"))
    articles = [make_article(slug, body=GUIDE, publish=True) for slug in ("alpha", "beta")]
    make_article("draft-only")
    for article in articles:
        index_article(article.pk)
    before = {chunk.pk: list(chunk.embedding) for chunk in Chunk.objects.all()}
    assert articles_to_reindex() == []

    second = use_embedder(FakeEmbedder("fake/two"))

    assert sorted(articles_to_reindex()) == sorted(article.pk for article in articles)
    job = reindex_job_run(ReindexJob.objects.create(reason="embedding model changed"))
    assert (job.state, job.done, job.total) == (ReindexJob.State.DONE, 2, 2)
    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {"fake/two"}
    after = {chunk.heading_path: list(chunk.embedding) for chunk in Chunk.objects.all()}
    assert not set(map(tuple, after.values())) & set(map(tuple, before.values()))
    assert articles_to_reindex() == []
    assert len(second.calls) == 2 and len(first.calls) == 2


def test_the_local_model_name_differs_from_another_model(make_article, use_embedder):
    article = make_article(body="Short text.", publish=True)
    index_article(article.pk)  # the real local model
    assert articles_to_reindex() == []

    use_embedder(FakeEmbedder("openai/text-embedding-3-small"))

    assert articles_to_reindex() == [article.pk]


# --- Failures ------------------------------------------------------------------------------------------------


def test_an_embedding_failure_marks_the_article_failed_and_keeps_its_old_chunks(make_article, editor, use_embedder):
    use_embedder(FakeEmbedder())
    article = make_article(body="Good text.", publish=True)
    index_article(article.pk)
    old_chunks = [(chunk.pk, chunk.text) for chunk in chunks_of(article)]
    edit(article, editor, "Text that goes BOOM.")
    article_publish(actor=editor, article=article)
    use_embedder(FakeEmbedder(fail_on="BOOM"))

    with pytest.raises(EmbeddingError):
        index_article(article.pk)

    failed = fresh(article)
    assert failed.index_state == Article.IndexState.FAILED
    assert failed.index_error == "the embeddings endpoint failed: BOOM is not welcome"
    assert [(chunk.pk, chunk.text) for chunk in chunks_of(article)] == old_chunks
    assert articles_to_reindex() == [article.pk]

    use_embedder(FakeEmbedder())
    index_article(article.pk)

    indexed = fresh(article)
    assert (indexed.index_state, indexed.index_error) == (Article.IndexState.INDEXED, "")
    assert [chunk.text for chunk in chunks_of(article)] == ["Text that goes BOOM."]


def test_a_reindex_job_reports_progress_and_one_failure_does_not_stop_the_others(make_article, use_embedder):
    use_embedder(FakeEmbedder(fail_on="BOOM"))
    good_a = make_article("a-good", publish=True)
    bad = make_article("b-bad", body="This one goes BOOM.", publish=True)
    good_c = make_article("c-good", publish=True)
    job = ReindexJob.objects.create(reason="reindex_articles")
    seen = []

    def on_progress(current: ReindexJob) -> None:
        stored = ReindexJob.objects.get(pk=current.pk)
        seen.append((current.done, current.total, stored.done, stored.total, stored.state))

    job = reindex_job_run(job, on_progress=on_progress)

    assert seen == [(n, 3, n, 3, ReindexJob.State.RUNNING) for n in (1, 2, 3)]
    job.refresh_from_db()
    assert (job.state, job.done, job.total, job.percent) == (ReindexJob.State.FAILED, 3, 3, 100)
    assert job.error == f"article {bad.pk}: the embeddings endpoint failed: BOOM is not welcome"
    assert job.finished_at is not None
    assert fresh(bad).index_state == Article.IndexState.FAILED
    for good in (good_a, good_c):
        assert fresh(good).index_state == Article.IndexState.INDEXED
        assert chunks_of(good)


def test_a_job_for_one_article_indexes_only_that_one(make_article, use_embedder):
    use_embedder(FakeEmbedder())
    target = make_article("target", publish=True)
    other = make_article("other", publish=True)

    job = reindex_job_run(ReindexJob.objects.get(article=target))

    assert (job.state, job.done, job.total, job.error) == (ReindexJob.State.DONE, 1, 1, "")
    assert chunks_of(target) and not chunks_of(other)


# --- A change while indexing ---------------------------------------------------------------------------------


def test_a_publish_while_indexing_does_not_store_stale_chunks(make_article, editor, use_embedder):
    article = make_article(body="First version.", publish=True)
    first_revision = fresh(article).published_revision_id

    def publish_meanwhile():
        edit(article, editor, "Second version.")
        article_publish(actor=editor, article=article)

    fake = use_embedder(FakeEmbedder(before_embed=publish_meanwhile))

    assert index_article(article.pk) == 0

    assert chunks_of(article) == []
    changed = fresh(article)
    assert changed.published_revision_id != first_revision
    assert changed.index_state == Article.IndexState.PENDING  # its own job indexes it
    assert ReindexJob.objects.filter(article=article).count() == 2

    fake.before_embed = None
    assert index_article(article.pk) == 1
    assert [(chunk.text, chunk.revision_id) for chunk in chunks_of(article)] == [
        ("Second version.", changed.published_revision_id)
    ]


def test_a_publish_while_reindexing_keeps_the_chunks_until_its_own_job(make_article, editor, use_embedder):
    use_embedder(FakeEmbedder())
    article = make_article(body="First version.", publish=True)
    index_article(article.pk)

    def publish_meanwhile():
        edit(article, editor, "Second version.")
        article_publish(actor=editor, article=article)

    use_embedder(FakeEmbedder(before_embed=publish_meanwhile))

    assert index_article(article.pk) == 0

    assert [chunk.text for chunk in chunks_of(article)] == ["First version."]


@pytest.mark.parametrize("take_down", [article_archive, article_unpublish])
def test_taking_an_article_down_while_indexing_stores_nothing(make_article, editor, use_embedder, take_down):
    article = make_article(body=GUIDE, publish=True)
    use_embedder(FakeEmbedder(before_embed=lambda: take_down(actor=editor, article=article)))

    assert index_article(article.pk) == 0

    assert chunks_of(article) == []
    assert fresh(article).index_state == Article.IndexState.NOT_INDEXED


# --- The worker ----------------------------------------------------------------------------------------------


def test_the_task_runs_a_job_once(make_article, use_embedder):
    fake = use_embedder(FakeEmbedder())
    article = make_article(publish=True)
    job = ReindexJob.objects.get(article=article)

    reindex(job.pk)
    reindex(job.pk)  # redelivered: already done
    reindex(job.pk + 1000)  # gone: nothing to do

    job.refresh_from_db()
    assert job.state == ReindexJob.State.DONE
    assert len(fake.calls) == 1
    assert chunks_of(article)


def test_a_starting_worker_queues_one_job_when_the_index_is_stale(make_article, use_embedder, queued):
    use_embedder(FakeEmbedder())
    article = make_article(publish=True)
    index_article(article.pk)

    _reindex_stale_articles()
    assert queued == []

    use_embedder(FakeEmbedder("fake/another-model"))
    _reindex_stale_articles()

    (job,) = ReindexJob.objects.filter(article=None)
    assert queued == [job.pk]
    assert (job.reason, job.state) == ("stale or missing index", ReindexJob.State.QUEUED)
