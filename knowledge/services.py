"""Article curation: create, edit, publish, archive, restore. Every change stores a revision and is audited;
publishing and archiving (re)index the article in a worker once the transaction commits."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils.text import slugify

from governance.audit import audit_context
from governance.errors import Conflict, ValidationFailed
from knowledge.models import Article, ArticleRevision, Chunk, ReindexJob

CONTENT_FIELDS = ("title", "language", "tags", "body")
_collected_jobs: ContextVar[list | None] = ContextVar("knowledge_collected_jobs", default=None)


@dataclass(frozen=True)
class ArticleContent:
    title: str
    language: str
    body: str
    tags: tuple[str, ...] = ()


def _validated(content: ArticleContent) -> ArticleContent:
    title, body, language = content.title.strip(), content.body.strip(), content.language.strip().lower()
    if not title:
        raise ValidationFailed("A title is required.", code="title_required")
    if not body:
        raise ValidationFailed("The article has no text.", code="body_required")
    if not language or len(language) > 8 or not language.replace("-", "").isalpha():
        raise ValidationFailed("A language code such as en, fr or de is required.", code="language_invalid")
    tags = tuple(dict.fromkeys(tag.strip()[:50] for tag in content.tags if tag.strip()))
    return ArticleContent(title=title[:200], language=language, body=body + "\n", tags=tags)


def _revision_add(article: Article, *, actor, note: str = "") -> ArticleRevision:
    latest = article.revisions.order_by("-number").values_list("number", flat=True).first() or 0
    return ArticleRevision.objects.create(
        article=article,
        number=latest + 1,
        title=article.title,
        language=article.language,
        tags=list(article.tags),
        body=article.body,
        author=actor,
        note=note[:200],
    )


@transaction.atomic
def article_create(*, actor, slug: str, content: ArticleContent, publish: bool = False, note: str = "") -> Article:
    content = _validated(content)
    slug = slugify(slug or content.title)[:120]
    if not slug:
        raise ValidationFailed("A slug (letters, digits, hyphens) is required.", code="slug_required")
    if Article.objects.filter(slug=slug).exists():
        raise Conflict(f"An article with the slug {slug!r} already exists.")
    with audit_context(actor=actor):
        try:
            with transaction.atomic():  # a concurrent create of the same slug: the unique index decides
                article = Article.objects.create(
                    slug=slug,
                    title=content.title,
                    language=content.language,
                    tags=list(content.tags),
                    body=content.body,
                    updated_by=actor,
                )
        except IntegrityError as error:
            raise Conflict(f"An article with the slug {slug!r} already exists.") from error
        _revision_add(article, actor=actor, note=note or "created")
    if publish:
        article = article_publish(actor=actor, article=article)
    return article


@transaction.atomic
def article_update(*, actor, article: Article, content: ArticleContent, note: str = "") -> bool:
    """Save new content as a new revision (False when nothing changed). A published article keeps serving
    its published revision until it is published again."""
    content = _validated(content)
    article = Article.objects.select_for_update().get(pk=article.pk)
    if all(getattr(article, name) == _field(content, name) for name in CONTENT_FIELDS):
        return False
    for name in CONTENT_FIELDS:
        setattr(article, name, _field(content, name))
    article.updated_by = actor
    with audit_context(actor=actor):
        article.save()
        _revision_add(article, actor=actor, note=note or "edited")
    return True


@transaction.atomic
def article_publish(*, actor, article: Article) -> Article:
    """Make the latest revision the one readers and Alfred see, and index it."""
    article = Article.objects.select_for_update().get(pk=article.pk)
    latest = article.revisions.order_by("-number").first()
    if latest is None:
        raise Conflict("The article has no revision to publish.")
    if article.status == Article.Status.PUBLISHED and article.published_revision_id == latest.pk:
        return article  # already live: publishing again changes nothing
    article.status = Article.Status.PUBLISHED
    article.published_revision = latest
    article.index_state = Article.IndexState.PENDING
    article.updated_by = actor
    with audit_context(actor=actor):
        article.save()
    reindex_enqueue(actor=actor, article=article, reason="published")
    return article


def article_archive(*, actor, article: Article) -> Article:
    """Take the article out of answers and searches now (its chunks go in this transaction)."""
    return _take_down(actor=actor, article=article, status=Article.Status.ARCHIVED)


def article_unpublish(*, actor, article: Article) -> Article:
    """Back to draft: out of answers and searches, kept for editing."""
    return _take_down(actor=actor, article=article, status=Article.Status.DRAFT)


@transaction.atomic
def _take_down(*, actor, article: Article, status: str) -> Article:
    article = Article.objects.select_for_update().get(pk=article.pk)
    if article.status == status:
        return article
    article.status = status
    article.index_state = Article.IndexState.NOT_INDEXED
    article.updated_by = actor
    with audit_context(actor=actor):
        article.save()
    Chunk.objects.filter(article=article).delete()
    return article


@transaction.atomic
def article_restore(*, actor, article: Article, revision: ArticleRevision) -> Article:
    """Make an old revision's content the working copy again, as a new revision (history is never rewritten)."""
    if revision.article_id != article.pk:
        raise ValidationFailed("This revision belongs to another article.", code="revision_invalid")
    content = ArticleContent(title=revision.title, language=revision.language, body=revision.body, tags=revision.tags)
    article_update(actor=actor, article=article, content=content, note=f"restored revision {revision.number}")
    article.refresh_from_db()
    return article


def reindex_enqueue(*, actor=None, article: Article | None = None, reason: str = "") -> ReindexJob:
    """A reindex job (one article, or every article that needs it), run by a worker after commit; or,
    inside `indexing_collected()`, handed to the caller to run in this process."""
    from knowledge.tasks import reindex

    job = ReindexJob.objects.create(article=article, reason=reason[:120], requested_by=actor)
    collected = _collected_jobs.get()
    if collected is not None:
        collected.append(job)
    else:
        transaction.on_commit(lambda: reindex.delay(job.pk))
    return job


@contextmanager
def indexing_collected() -> Iterator[list[ReindexJob]]:
    """Collect the reindex jobs created inside, instead of sending them to workers (commands that index
    in-process with a progress bar, the evaluation)."""
    jobs: list[ReindexJob] = []
    token = _collected_jobs.set(jobs)
    try:
        yield jobs
    finally:
        _collected_jobs.reset(token)


def _field(content: ArticleContent, name: str):
    value = getattr(content, name)
    return list(value) if name == "tags" else value
