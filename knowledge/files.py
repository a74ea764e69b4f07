"""Import and export articles as Markdown files with front matter (the evaluation dataset format).

Import reads and checks every file before it changes anything: one bad file is reported by name and nothing
is imported. Then, in one transaction, each article is created or updated by slug (a new revision only when
its content changed) and brought to the file's status. Indexing follows in workers once committed, or in
this process when asked (`index_now`).
"""

from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from knowledge.markdown import ArticleFile, ArticleFileError, article_file_read, article_file_write
from knowledge.models import Article
from knowledge.services import (
    ArticleContent,
    article_archive,
    article_create,
    article_publish,
    article_unpublish,
    article_update,
)


class ImportFailed(ValueError):
    """A file could not be imported; the message names it. Nothing was imported."""


@dataclass
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    status_changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[str]:
        return sorted({*self.created, *self.updated, *self.status_changed})


def article_files_read(directory: Path) -> list[tuple[Path, ArticleFile]]:
    directory = Path(directory)
    if not directory.is_dir():
        raise ImportFailed(f"{directory}: not a directory")
    files = sorted(directory.rglob("*.md"))
    parsed, seen = [], {}
    for path in files:
        try:
            article = article_file_read(path.read_text(encoding="utf-8-sig"))  # some editors start with a BOM
        except UnicodeDecodeError as error:
            raise ImportFailed(f"{path}: not UTF-8 text ({error})") from error
        except ArticleFileError as error:
            raise ImportFailed(f"{path}: {error}") from error
        if article.slug in seen:
            raise ImportFailed(f"{path}: slug {article.slug!r} is also used by {seen[article.slug]}")
        seen[article.slug] = path
        parsed.append((path, article))
    return parsed


def articles_import(directory: Path, *, actor=None, only_new: bool = False) -> ImportReport:
    """Import every article of the directory. `only_new`: leave existing slugs as they are (the demo data,
    which must not undo what staff changed since)."""
    files = article_files_read(directory)
    report = ImportReport()
    with transaction.atomic():
        for path, file in files:
            if only_new and Article.objects.filter(slug=file.slug).exists():
                report.unchanged.append(file.slug)
                continue
            try:
                _import_one(file, actor=actor, report=report)
            except Exception as error:
                raise ImportFailed(f"{path}: {getattr(error, 'detail', error)}") from error
    return report


def _import_one(file: ArticleFile, *, actor, report: ImportReport) -> None:
    content = ArticleContent(title=file.title, language=file.language, body=file.body, tags=tuple(file.tags))
    article = Article.objects.filter(slug=file.slug).first()
    if article is None:
        article = article_create(actor=actor, slug=file.slug, content=content, note="imported")
        if article.slug != file.slug:
            raise ImportFailed(f"slug {file.slug!r} is not a valid slug (letters, digits, hyphens)")
        report.created.append(file.slug)
        _bring_to_status(article, file.status, actor=actor)
        return
    changed = article_update(actor=actor, article=article, content=content, note="imported")
    article.refresh_from_db()
    status_changed = _bring_to_status(article, file.status, actor=actor, republish=changed)
    if changed:
        report.updated.append(file.slug)
    elif status_changed:
        report.status_changed.append(file.slug)
    else:
        report.unchanged.append(file.slug)


def _bring_to_status(article: Article, status: str, *, actor, republish: bool = True) -> bool:
    if status == Article.Status.PUBLISHED:
        if article.status != status or (republish and article.published_revision_id != _latest_id(article)):
            article_publish(actor=actor, article=article)
            return True
        return False
    if article.status == status:
        return False
    if status == Article.Status.ARCHIVED:
        article_archive(actor=actor, article=article)
    else:
        article_unpublish(actor=actor, article=article)
    return True


def _latest_id(article: Article) -> int | None:
    return article.revisions.order_by("-number").values_list("pk", flat=True).first()


def articles_export(directory: Path) -> list[Path]:
    """Write every article (its working copy and status) as `<slug>.md`; returns the files written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for article in Article.objects.order_by("slug"):
        path = directory / f"{article.slug}.md"
        file = ArticleFile(
            slug=article.slug,
            title=article.title,
            language=article.language,
            status=article.status,
            body=article.body,
            tags=list(article.tags),
        )
        path.write_text(article_file_write(file), encoding="utf-8")
        written.append(path)
    return written
