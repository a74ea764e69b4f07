"""Reads of the knowledge base for pages, the staff API and other apps."""

from django.db.models import Max, Q, QuerySet
from django.urls import reverse

from governance.errors import NotFound
from knowledge.models import Article, ReindexJob


def article_url(slug: str) -> str:
    """Where a person reads an article (the published revision): the link of a citation."""
    return reverse("knowledge-article", args=[slug])


def published_article_get(slug: str) -> Article | None:
    return (
        Article.objects.select_related("published_revision")
        .filter(slug=slug, status=Article.Status.PUBLISHED, published_revision__isnull=False)
        .first()
    )


def articles_for_staff(*, status: str = "", language: str = "", q: str = "") -> QuerySet[Article]:
    """Every article (staff see them all), by title, with what a list shows: no query per row."""
    articles = Article.objects.select_related("published_revision", "updated_by").annotate(
        latest_revision_number=Max("revisions__number")
    )
    if status:
        articles = articles.filter(status=status)
    if language:
        articles = articles.filter(language=language.strip().lower())
    if q.strip():
        words = q.strip()
        articles = articles.filter(
            Q(title__icontains=words) | Q(slug__icontains=words) | Q(body__icontains=words) | Q(tags__contains=[words])
        )
    return articles.order_by("title", "pk")


def article_get_for_staff(*, article_id: int) -> Article:
    article = articles_for_staff().filter(pk=article_id).first()
    if article is None:
        raise NotFound("No such article.")
    return article


def unpublished_changes(article: Article) -> bool:
    """Article.has_unpublished_changes, from the annotation of `articles_for_staff` (no query)."""
    published = article.published_revision
    return (
        article.status == Article.Status.PUBLISHED
        and published is not None
        and published.number != article.latest_revision_number
    )


def reindex_job_latest() -> ReindexJob | None:
    """The reindex job the console shows: the latest one that is waiting, or that had articles to index.

    A job that found nothing to do says nothing worth showing ("Done, 0 of 0 articles"): the one a worker queues at
    start-up when it sees articles waiting, which their own jobs have indexed by the time it runs, or "Reindex
    everything" without a published article. A queued job counts its articles only when it starts, so it shows.
    """
    return (
        ReindexJob.objects.select_related("article")
        .filter(Q(state=ReindexJob.State.QUEUED) | Q(total__gt=0))
        .order_by("-pk")
        .first()
    )
