"""Importing and exporting Markdown articles, and the import/export/reindex commands."""

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from knowledge.files import ImportFailed, article_files_read, articles_export, articles_import
from knowledge.indexing import index_article
from knowledge.markdown import article_file_read
from knowledge.models import Article, ArticleRevision, Chunk, ReindexJob
from knowledge.services import ArticleContent, article_update
from tests.knowledge.conftest import DEV_KB, OWN_KB, FakeEmbedder

pytestmark = pytest.mark.django_db

DEV_SLUGS = [
    "beta-voice-booking",
    "calendar-permissions",
    "change-password",
    "horaires-ouverture",
    "patient-no-show",
    "waiting-list",
]
GOOD = "---\nslug: {slug}\ntitle: {title}\nlanguage: en\ntags: [test]\nstatus: {status}\n---\n{body}\n"


@pytest.fixture
def kb(tmp_path) -> Path:
    """A copy of the dev knowledge base that a test may change."""
    return Path(shutil.copytree(DEV_KB, tmp_path / "kb"))


@pytest.fixture
def fake(use_embedder) -> FakeEmbedder:
    return use_embedder(FakeEmbedder())


def write(directory: Path, name: str, *, slug=None, title="A title", status="published", body="Some text.") -> Path:
    path = directory / name
    path.write_text(GOOD.format(slug=slug or path.stem, title=title, status=status, body=body), encoding="utf-8")
    return path


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def state() -> tuple[int, int, int]:
    return Article.objects.count(), ArticleRevision.objects.count(), ReindexJob.objects.count()


def run(command: str, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(command, *[str(arg) for arg in args], stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# --- Import --------------------------------------------------------------------------------------------------


def test_the_dev_knowledge_base_is_imported_as_written(kb):
    report = articles_import(kb)

    assert sorted(report.created) == DEV_SLUGS
    assert report.updated == report.status_changed == report.unchanged == []
    assert report.changed == DEV_SLUGS
    statuses = dict(Article.objects.values_list("slug", "status"))
    assert statuses == {slug: "draft" if slug == "beta-voice-booking" else "published" for slug in DEV_SLUGS}
    french = Article.objects.get(slug="horaires-ouverture")
    assert (french.language, french.title, french.tags) == (
        "fr",
        "Modifier vos horaires d'ouverture",
        ["agenda", "horaires"],
    )
    assert french.published_revision == french.latest_revision
    assert set(ArticleRevision.objects.values_list("note", flat=True)) == {"imported"}
    assert ReindexJob.objects.filter(reason="published").count() == 5


def test_our_own_knowledge_base_is_imported_with_its_statuses():
    report = articles_import(OWN_KB)

    assert len(report.created) == 28
    counts = {status: Article.objects.filter(status=status).count() for status in ("published", "draft", "archived")}
    assert counts == {"published": 25, "draft": 2, "archived": 1}
    assert Article.objects.get(slug="outlook-desktop-connector").status == "archived"
    assert Article.objects.filter(language="fr").count() == 13


def test_a_second_import_changes_nothing(kb):
    articles_import(kb)
    before = state()

    report = articles_import(kb)

    assert sorted(report.unchanged) == DEV_SLUGS
    assert report.created == report.updated == report.status_changed == report.changed == []
    assert state() == before


def test_a_changed_body_is_a_new_revision_published_again(kb):
    articles_import(kb)
    replace_in(kb / "waiting-list.md", "The first to accept gets the slot.", "The first to answer gets the slot.")

    report = articles_import(kb)

    assert (report.updated, report.status_changed) == (["waiting-list"], [])
    assert sorted(report.unchanged) == [slug for slug in DEV_SLUGS if slug != "waiting-list"]
    article = Article.objects.get(slug="waiting-list")
    assert [r.number for r in article.revisions.all()] == [2, 1]
    assert article.published_revision.number == 2
    assert "first to answer" in article.published_revision.body
    assert ReindexJob.objects.filter(article=article).count() == 2


def test_a_changed_draft_stays_a_draft(kb):
    articles_import(kb)
    replace_in(kb / "beta-voice-booking.md", "Not available yet.", "Coming next year.")

    report = articles_import(kb)

    article = Article.objects.get(slug="beta-voice-booking")
    assert report.updated == ["beta-voice-booking"]
    assert (article.status, article.published_revision, article.revisions.count()) == ("draft", None, 2)


def test_archiving_through_the_file_takes_the_article_out_of_the_index(kb, fake):
    articles_import(kb)
    article = Article.objects.get(slug="patient-no-show")
    index_article(article.pk)
    assert Chunk.objects.filter(article=article).exists()
    replace_in(kb / "patient-no-show.md", "status: published", "status: archived")

    report = articles_import(kb)

    assert (report.status_changed, report.updated) == (["patient-no-show"], [])
    article.refresh_from_db()
    assert (article.status, article.index_state) == ("archived", "not_indexed")
    assert not Chunk.objects.filter(article=article).exists()
    assert article.revisions.count() == 1


def test_publishing_a_draft_through_the_file(kb):
    articles_import(kb)
    replace_in(kb / "beta-voice-booking.md", "status: draft", "status: published")

    report = articles_import(kb)

    assert report.status_changed == ["beta-voice-booking"]
    article = Article.objects.get(slug="beta-voice-booking")
    assert (article.status, article.published_revision) == ("published", article.latest_revision)


def test_a_bad_file_among_good_ones_imports_nothing_and_names_the_file(kb):
    write(kb, "zz-good.md")
    replace_in(kb / "waiting-list.md", "status: published", "status: live")
    before = state()

    with pytest.raises(ImportFailed) as error:
        articles_import(kb)

    assert str(error.value) == f"{kb / 'waiting-list.md'}: status 'live' is not one of draft, published, archived"
    assert state() == before == (0, 0, 0)


def test_a_bad_file_leaves_the_existing_articles_as_they_were(kb):
    articles_import(kb)
    before = state()
    replace_in(kb / "change-password.md", "twelve", "sixteen")
    (kb / "broken.md").write_text("No front matter here.\n", encoding="utf-8")

    with pytest.raises(ImportFailed, match=r"broken\.md: no front matter"):
        articles_import(kb)

    assert state() == before
    assert "twelve" in Article.objects.get(slug="change-password").body


@pytest.mark.parametrize(
    ("front_matter", "expected"),
    [
        ("slug: Not A Slug\ntitle: T\nlanguage: en\nstatus: published\n", "'Not A Slug' is not a valid slug"),
        ("slug: ok-slug\ntitle: T\nlanguage: english!\nstatus: published\n", "A language code such as en"),
    ],
)
def test_a_file_refused_while_importing_rolls_back_the_files_before_it(tmp_path, front_matter, expected):
    write(tmp_path, "a-first.md")
    (tmp_path / "b-bad.md").write_text(f"---\n{front_matter}---\nBody.\n", encoding="utf-8")
    write(tmp_path, "c-last.md")

    with pytest.raises(ImportFailed) as error:
        articles_import(tmp_path)

    assert str(error.value).startswith(f"{tmp_path / 'b-bad.md'}: ")
    assert expected in str(error.value)
    assert state() == (0, 0, 0)


def test_a_slug_used_by_two_files_names_both(tmp_path):
    (tmp_path / "sub").mkdir()
    first = write(tmp_path, "one.md", slug="same-slug")
    second = write(tmp_path / "sub", "two.md", slug="same-slug")

    with pytest.raises(ImportFailed) as error:
        articles_import(tmp_path)

    assert str(first) in str(error.value) and str(second) in str(error.value)
    assert "same-slug" in str(error.value)
    assert Article.objects.count() == 0


def test_files_that_are_not_utf8_are_named(tmp_path):
    (tmp_path / "latin1.md").write_bytes(
        GOOD.format(slug="x", title="Préférences", status="draft", body="é").encode("latin-1")
    )

    with pytest.raises(ImportFailed, match=r"latin1\.md: not UTF-8 text"):
        articles_import(tmp_path)


def test_a_utf8_file_with_a_byte_order_mark_is_read(tmp_path):
    text = GOOD.format(slug="bom", title="Préférences", status="draft", body="Réglages.")
    (tmp_path / "bom.md").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))

    assert articles_import(tmp_path).created == ["bom"]


def test_only_markdown_files_are_read_in_sorted_order_including_subfolders(tmp_path):
    write(tmp_path, "b.md")
    (tmp_path / "nested").mkdir()
    write(tmp_path / "nested", "a.md")
    (tmp_path / "notes.txt").write_text("not an article", encoding="utf-8")

    assert [article.slug for _, article in article_files_read(tmp_path)] == ["b", "a"]


def test_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(ImportFailed, match="not a directory"):
        articles_import(tmp_path / "missing")


# --- Export --------------------------------------------------------------------------------------------------


def test_export_then_import_changes_nothing(tmp_path, editor):
    articles_import(OWN_KB)
    before = state()

    written = articles_export(tmp_path / "out")
    report = articles_import(tmp_path / "out")

    assert len(written) == 28 and len(report.unchanged) == 28
    assert state() == before
    for path in written:  # what was exported is what was imported
        assert article_file_read(path.read_text(encoding="utf-8")) == article_file_read(
            (OWN_KB / path.name).read_text(encoding="utf-8")
        )


def test_export_writes_the_working_copy_and_the_status(tmp_path, kb, editor):
    articles_import(kb)
    article = Article.objects.get(slug="waiting-list")
    content = ArticleContent(title=article.title, language="en", body="Edited, not published.", tags=("x",))
    article_update(actor=editor, article=article, content=content)

    (path,) = [p for p in articles_export(tmp_path / "out") if p.name == "waiting-list.md"]

    exported = article_file_read(path.read_text(encoding="utf-8"))
    assert (exported.body, exported.status, exported.tags) == ("Edited, not published.\n", "published", ["x"])


# --- Commands ------------------------------------------------------------------------------------------------


def test_import_command_prints_the_report_and_indexes_with_a_progress_bar(kb, fake):
    out, err = run("import_articles", kb)

    assert f"created (6): {', '.join(DEV_SLUGS)}" in out
    assert "6 changed, 0 unchanged." in out
    assert "indexing" in err and "5/5" in err
    assert "\n\r" not in err and err.endswith("\n")  # one bar redrawn in place, not a line per article
    assert Chunk.objects.values("article").distinct().count() == 5
    assert set(Article.objects.filter(status="published").values_list("index_state", flat=True)) == {"indexed"}

    out, err = run("import_articles", kb)

    assert f"unchanged (6): {', '.join(DEV_SLUGS)}" in out
    assert "0 changed, 6 unchanged." in out
    assert err == ""


def test_import_command_with_the_local_model(kb):
    run("import_articles", kb)

    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {"all-MiniLM-L6-v2"}


def test_import_command_without_indexing_leaves_it_to_the_workers(kb, fake, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        out, err = run("import_articles", kb, "--no-index")

    assert "6 changed" in out and err == ""
    assert not Chunk.objects.exists() and fake.calls == []
    assert len(queued) == 5


def test_import_command_refuses_bad_input_and_imports_nothing(kb):
    write(kb, "zz-good.md")
    write(kb, "zz-dup.md", slug="waiting-list")

    with pytest.raises(CommandError) as error:
        run("import_articles", kb)

    assert "zz-dup.md: slug 'waiting-list' is also used by" in str(error.value)
    assert str(error.value).endswith("Nothing was imported.")
    assert state() == (0, 0, 0)


def test_import_command_in_an_empty_directory(tmp_path):
    out, _ = run("import_articles", tmp_path)

    assert "No articles (*.md) found." in out


def test_import_command_says_which_articles_could_not_be_indexed(kb, use_embedder):
    use_embedder(FakeEmbedder(fail_on="waiting list"))

    with pytest.raises(CommandError) as error:
        run("import_articles", kb)

    failed = Article.objects.get(slug="waiting-list")
    assert f"article {failed.pk}:" in str(error.value)
    assert Article.objects.count() == 6  # imported all the same: reindex_articles retries the failed one
    assert failed.index_state == "failed"


def test_export_command(tmp_path, kb):
    articles_import(kb)

    out, _ = run("export_articles", tmp_path / "out")

    assert f"6 articles written to {tmp_path / 'out'}." in out
    assert sorted(path.stem for path in (tmp_path / "out").glob("*.md")) == DEV_SLUGS


def test_reindex_command_with_nothing_to_do(kb, fake):
    run("import_articles", kb)
    jobs = ReindexJob.objects.count()

    out, err = run("reindex_articles")

    assert "Embedding model: fake/hash-v1. Articles to index: 0." in out
    assert ReindexJob.objects.count() == jobs and err == ""


def test_reindex_command_indexes_what_is_missing(kb, fake):
    articles_import(kb)  # indexing left to workers that never came

    out, err = run("reindex_articles")

    assert "Articles to index: 5." in out and "5 articles indexed." in out
    assert "5/5" in err
    assert ReindexJob.objects.get(reason="reindex_articles").state == "done"


def test_reindex_command_all_re_embeds_every_published_article(kb, fake):
    run("import_articles", kb)
    calls = len(fake.calls)

    out, err = run("reindex_articles", "--all")

    assert "Articles to index: 5." in out and "5 articles indexed." in out
    assert "indexing" in err and "5/5" in err and "\n\r" not in err
    assert len(fake.calls) == calls + 5
    job = ReindexJob.objects.get(reason="everything")
    assert (job.state, job.done, job.total) == ("done", 5, 5)


def test_reindex_command_fails_when_an_article_cannot_be_indexed(kb, use_embedder):
    articles_import(kb)
    use_embedder(FakeEmbedder(fail_on="waiting list"))

    with pytest.raises(CommandError, match="Some articles could not be indexed"):
        run("reindex_articles")

    assert Article.objects.filter(index_state="indexed").count() == 4


def test_reindex_command_async_queues_a_job_for_a_worker(kb, fake, queued):
    articles_import(kb)

    out, err = run("reindex_articles", "--all", "--async")

    job = ReindexJob.objects.get(reason="everything")
    assert queued == [job.pk]
    assert (job.state, job.done) == ("queued", 0)
    assert f"Queued as job {job.pk}" in out
    assert fake.calls == [] and err == ""
