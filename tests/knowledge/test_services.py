"""Article curation through the services: revisions, validation, publishing, reindex jobs and the audit trail."""

import pytest
from auditlog.models import LogEntry

from governance.errors import Conflict, ValidationFailed
from knowledge.indexing import index_article
from knowledge.models import Article, ArticleRevision, Chunk, ReindexJob
from knowledge.services import (
    ArticleContent,
    article_archive,
    article_create,
    article_publish,
    article_restore,
    article_unpublish,
    article_update,
    indexing_collected,
    reindex_enqueue,
)
from tests.factories import UserFactory
from tests.knowledge.conftest import FakeEmbedder

pytestmark = pytest.mark.django_db


def content(body="Open Settings > Waiting list.", *, title="Waiting list", language="en", tags=("appointments",)):
    return ArticleContent(title=title, language=language, body=body, tags=tuple(tags))


def revisions_of(article) -> list[tuple[int, str, str]]:
    return [(r.number, r.body, r.note) for r in article.revisions.order_by("number")]


# --- Revisions -----------------------------------------------------------------------------------------------


def test_create_stores_the_article_and_its_first_revision(editor):
    article = article_create(
        actor=editor, slug="", content=content(title="  Use the Waiting List ", language=" EN ", tags=("a", " a", "b"))
    )

    assert (article.slug, article.title, article.language, article.tags) == (
        "use-the-waiting-list",
        "Use the Waiting List",
        "en",
        ["a", "b"],
    )
    assert (article.status, article.index_state, article.updated_by) == ("draft", "not_indexed", editor)
    assert article.body == "Open Settings > Waiting list.\n"
    (revision,) = article.revisions.all()
    assert (revision.number, revision.author, revision.note, revision.title) == (1, editor, "created", article.title)
    assert article.latest_revision == revision
    assert article.published_revision is None


def test_each_change_is_a_new_numbered_revision_with_its_author_and_note(editor):
    other = UserFactory(username="other-editor")
    article = article_create(actor=editor, slug="waiting-list", content=content("One."))

    assert article_update(actor=other, article=article, content=content("Two."), note="typo fixed")
    assert article_update(actor=editor, article=article, content=content("Two.", tags=("new-tag",)))

    assert revisions_of(article) == [(1, "One.\n", "created"), (2, "Two.\n", "typo fixed"), (3, "Two.\n", "edited")]
    assert [r.author for r in article.revisions.order_by("number")] == [editor, other, editor]
    article.refresh_from_db()
    assert (article.body, article.tags, article.updated_by) == ("Two.\n", ["new-tag"], editor)


def test_an_update_with_the_same_content_makes_no_revision(editor):
    article = article_create(actor=editor, slug="waiting-list", content=content("Same text."))

    changed = article_update(actor=editor, article=article, content=content("  Same text.\n\n", title=" Waiting list"))

    assert changed is False
    assert article.revisions.count() == 1


def test_restore_makes_a_new_revision_with_the_old_content(editor):
    article = article_create(actor=editor, slug="waiting-list", content=content("Original.", title="First title"))
    article_update(actor=editor, article=article, content=content("Rewritten.", title="Second title"))
    first = article.revisions.get(number=1)

    restored = article_restore(actor=editor, article=article, revision=first)

    assert (restored.title, restored.body) == ("First title", "Original.\n")
    assert revisions_of(article) == [
        (1, "Original.\n", "created"),
        (2, "Rewritten.\n", "edited"),
        (3, "Original.\n", "restored revision 1"),
    ]


def test_restoring_a_revision_of_another_article_is_refused(editor):
    article = article_create(actor=editor, slug="one", content=content())
    other = article_create(actor=editor, slug="two", content=content())

    with pytest.raises(ValidationFailed) as error:
        article_restore(actor=editor, article=article, revision=other.revisions.get())

    assert error.value.code == "revision_invalid"


# --- Validation ----------------------------------------------------------------------------------------------


def test_a_duplicate_slug_is_a_conflict(editor):
    article_create(actor=editor, slug="waiting-list", content=content())

    with pytest.raises(Conflict, match="waiting-list"):
        article_create(actor=editor, slug="Waiting List", content=content())

    assert Article.objects.count() == 1


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"title": "   "}, "title_required"),
        ({"body": " \n\n "}, "body_required"),
        ({"language": ""}, "language_invalid"),
        ({"language": "english!"}, "language_invalid"),
        ({"language": "fr_FR"}, "language_invalid"),
    ],
)
def test_invalid_content_is_refused_on_create_and_update(editor, changes, code):
    article = article_create(actor=editor, slug="waiting-list", content=content())
    bad = content(**{"body": "Text.", **changes})

    with pytest.raises(ValidationFailed) as on_create:
        article_create(actor=editor, slug="another", content=bad)
    with pytest.raises(ValidationFailed) as on_update:
        article_update(actor=editor, article=article, content=bad)

    assert on_create.value.code == on_update.value.code == code
    assert Article.objects.count() == 1 and article.revisions.count() == 1


def test_a_slug_without_letters_or_digits_is_refused(editor):
    with pytest.raises(ValidationFailed) as error:
        article_create(actor=editor, slug="", content=content(title="???"))

    assert error.value.code == "slug_required"


# --- Publishing ----------------------------------------------------------------------------------------------


def test_publish_points_at_the_latest_revision_and_queues_one_reindex_on_commit(
    editor, queued, django_capture_on_commit_callbacks
):
    article = article_create(actor=editor, slug="waiting-list", content=content())

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        article_publish(actor=editor, article=article)

    article.refresh_from_db()
    assert (article.status, article.index_state) == ("published", "pending")
    assert article.published_revision == article.latest_revision
    (job,) = ReindexJob.objects.all()
    assert (job.article, job.reason, job.requested_by, job.state) == (article, "published", editor, "queued")
    assert len(callbacks) == 1
    assert queued == [job.pk]


def test_nothing_is_queued_before_the_transaction_commits(editor, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        article_create(actor=editor, slug="waiting-list", content=content(), publish=True)

    assert len(callbacks) == 1
    assert queued == []  # the worker must not look for a job the database does not show yet


def test_publishing_twice_is_a_no_op(editor, django_capture_on_commit_callbacks):
    article = article_create(actor=editor, slug="waiting-list", content=content(), publish=True)

    with django_capture_on_commit_callbacks() as callbacks:
        again = article_publish(actor=editor, article=article)

    assert callbacks == []
    assert ReindexJob.objects.count() == 1
    assert again.published_revision_id == article.published_revision_id


def test_publishing_after_an_edit_publishes_the_edit(editor):
    article = article_create(actor=editor, slug="waiting-list", content=content("One."), publish=True)
    article_update(actor=editor, article=article, content=content("Two."))
    article.refresh_from_db()
    assert article.has_unpublished_changes
    assert article.published_revision.body == "One.\n"

    article_publish(actor=editor, article=article)

    article.refresh_from_db()
    assert article.published_revision.body == "Two.\n"
    assert not article.has_unpublished_changes
    assert ReindexJob.objects.count() == 2


def test_archive_and_unpublish_take_the_article_out_and_keep_its_revisions(editor, use_embedder):
    use_embedder(FakeEmbedder())
    article = article_create(actor=editor, slug="waiting-list", content=content(), publish=True)
    index_article(article.pk)
    assert Chunk.objects.exists()

    archived = article_archive(actor=editor, article=article)
    assert (archived.status, archived.index_state) == ("archived", "not_indexed")
    assert not Chunk.objects.exists()
    assert article_archive(actor=editor, article=article).status == "archived"  # again: no change

    article_publish(actor=editor, article=article)
    drafted = article_unpublish(actor=editor, article=article)

    assert (drafted.status, drafted.index_state) == ("draft", "not_indexed")
    assert article.revisions.count() == 1


def test_indexing_collected_hands_the_jobs_over_instead_of_queueing_them(
    editor, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks, indexing_collected() as jobs:
        one = article_create(actor=editor, slug="one", content=content(), publish=True)
        two = article_create(actor=editor, slug="two", content=content(), publish=True)

    assert [job.article for job in jobs] == [one, two]
    assert callbacks == [] and queued == []

    with django_capture_on_commit_callbacks(execute=True):
        job = reindex_enqueue(actor=editor, reason="after the block")

    assert queued == [job.pk]  # outside the block, jobs go to workers again


def test_collections_do_not_leak_between_nested_blocks(editor):
    with indexing_collected() as outer:
        with indexing_collected() as inner:
            reindex_enqueue(reason="inner")
        reindex_enqueue(reason="outer")

    assert [job.reason for job in inner] == ["inner"]
    assert [job.reason for job in outer] == ["outer"]


# --- Audit ---------------------------------------------------------------------------------------------------


def test_article_changes_are_audited_with_their_actor(editor):
    article = article_create(actor=editor, slug="waiting-list", content=content("One."))
    article_update(actor=editor, article=article, content=content("Two."))
    article_publish(actor=editor, article=article)
    article_archive(actor=editor, article=article)

    entries = LogEntry.objects.get_for_object(article).order_by("pk")
    assert [entry.action for entry in entries] == [LogEntry.Action.CREATE] + [LogEntry.Action.UPDATE] * 3
    assert {entry.actor for entry in entries} == {editor}
    assert entries[1].changes_dict["body"] == ["One.\n", "Two.\n"]
    assert entries[3].changes_dict["status"] == ["published", "archived"]
    revision_entries = LogEntry.objects.get_for_model(ArticleRevision)
    assert revision_entries.count() == 2
    assert {entry.actor for entry in revision_entries} == {editor}


def test_the_index_bookkeeping_is_not_audited(editor, use_embedder):
    use_embedder(FakeEmbedder())
    article = article_create(actor=editor, slug="waiting-list", content=content(), publish=True)
    before = LogEntry.objects.get_for_object(article).count()

    index_article(article.pk)

    assert LogEntry.objects.get_for_object(article).count() == before
