"""Knowledge articles, their revisions, the indexed chunks of published revisions, and reindex jobs.

An article's own fields are its working copy; every save through `knowledge.services` stores a revision.
Publishing points `published_revision` at the latest revision: only that revision is chunked, embedded and
searched, so staff can edit a published article and the answers change only when they publish again.
"""

from auditlog.registry import auditlog
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils.translation import gettext_lazy as _
from pgvector.django import HnswIndex, VectorField

from knowledge.embeddings import EMBEDDING_DIMENSIONS


class Article(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PUBLISHED = "published", _("Published")
        ARCHIVED = "archived", _("Archived")

    class IndexState(models.TextChoices):
        NOT_INDEXED = "not_indexed", _("Not indexed")  # drafts and archived articles
        PENDING = "pending", _("Waiting to be indexed")
        INDEXING = "indexing", _("Indexing")
        INDEXED = "indexed", _("Indexed")
        FAILED = "failed", _("Indexing failed")

    slug = models.SlugField(max_length=120, unique=True)
    title = models.CharField(max_length=200)
    language = models.CharField(max_length=8, default="en")
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    body = models.TextField(help_text=_("Markdown. Raw HTML is shown as text, never run."))
    published_revision = models.ForeignKey(
        "ArticleRevision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    index_state = models.CharField(max_length=12, choices=IndexState.choices, default=IndexState.NOT_INDEXED)
    index_error = models.TextField(blank=True, default="")
    indexed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    @property
    def latest_revision(self) -> "ArticleRevision | None":
        return self.revisions.order_by("-number").first()

    @property
    def has_unpublished_changes(self) -> bool:
        """Edited since it was last published (what readers and Alfred see is the published revision)."""
        latest = self.latest_revision
        return self.status == self.Status.PUBLISHED and latest is not None and latest.pk != self.published_revision_id


class ArticleRevision(models.Model):
    """A snapshot of an article's content, kept for history and restore. Never edited."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    language = models.CharField(max_length=8)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    body = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.CharField(max_length=200, blank=True, default="")  # "imported", "restored revision 2"
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["article", "-number"]
        constraints = [models.UniqueConstraint(fields=["article", "number"], name="knowledge_revision_unique_number")]

    def __str__(self) -> str:
        return f"{self.article.slug} r{self.number}"


class Chunk(models.Model):
    """A passage of a published revision: the unit that is embedded, searched and cited.

    `search_vector` is `to_tsvector(<search_config>, heading_path || text)`, written by the indexer in SQL.
    `embedding_model` names the model that made `embedding`: vectors of another model are never compared.
    """

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="chunks")
    revision = models.ForeignKey(ArticleRevision, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    heading_path = models.CharField(max_length=500, blank=True, default="")  # "Title › Section › Subsection"
    text = models.TextField()
    language = models.CharField(max_length=8)
    search_config = models.CharField(max_length=32)  # a PostgreSQL text search configuration: english, french…
    search_vector = SearchVectorField(null=True)
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS)
    embedding_model = models.CharField(max_length=120)

    class Meta:
        ordering = ["article", "position"]
        indexes = [
            HnswIndex(
                name="knowledge_chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
            GinIndex(name="knowledge_chunk_search_gin", fields=["search_vector"]),
        ]
        constraints = [models.UniqueConstraint(fields=["revision", "position"], name="knowledge_chunk_unique_position")]

    def __str__(self) -> str:
        return f"{self.article_id}#{self.position}"


class ReindexJob(models.Model):
    """Progress of a (re)index run, shown in the console and the admin while it works."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    article = models.ForeignKey(Article, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=120, blank=True, default="")  # "published", "embedding model changed"
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    total = models.PositiveIntegerField(default=0)  # articles to index
    done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"reindex {self.pk} ({self.state} {self.done}/{self.total})"

    @property
    def percent(self) -> int:
        if not self.total:  # nothing to do (done), or not counted yet (queued)
            return 100 if self.state == self.State.DONE else 0
        return round(100 * self.done / self.total)


auditlog.register(Article, exclude_fields=["index_state", "index_error", "indexed_at", "updated_at"])
auditlog.register(ArticleRevision)
