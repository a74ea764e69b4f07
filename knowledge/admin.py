"""Admin of the knowledge base: look, search, and act through the services (publish, archive, reindex, restore).

Articles are read-only here: writing happens in the staff console (/console/knowledge/), where every save is
a revision and the services' refusals show next to the field they are about.
"""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from knowledge.markdown import render_html
from knowledge.models import Article, ArticleRevision, ReindexJob
from knowledge.services import article_archive, article_publish, article_restore, reindex_enqueue


class ReadOnlyAdmin(admin.ModelAdmin):
    """History and progress are never edited by hand; curation actions are for support staff."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_curate_permission(self, request) -> bool:
        return request.user.is_support_staff


class RevisionInline(admin.TabularInline):
    model = ArticleRevision
    fields = ("number", "title", "language", "author", "note", "created_at")
    readonly_fields = fields
    ordering = ("-number",)
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Article)
class ArticleAdmin(ReadOnlyAdmin):
    list_display = ("title", "slug", "language", "status", "index_state", "updated_at")
    list_filter = ("status", "language", "index_state")
    list_select_related = ("published_revision",)
    search_fields = ("title", "slug", "body")
    fields = (
        "title",
        "slug",
        "language",
        "tags",
        "status",
        "published_revision_number",
        "index_state",
        "index_error",
        "indexed_at",
        "console_link",
        "preview",
        "updated_by",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    inlines = [RevisionInline]
    actions = ["publish", "archive", "reindex"]

    @admin.display(description=_("Published revision"))
    def published_revision_number(self, article: Article):
        return article.published_revision.number if article.published_revision else "–"

    @admin.display(description=_("Edit"))
    def console_link(self, article: Article) -> str:
        url = reverse("knowledge:article-edit", args=[article.pk])
        return format_html('<a href="{}">{}</a>', url, _("Edit in the knowledge base console"))

    @admin.display(description=_("Preview (working copy)"))
    def preview(self, article: Article) -> str:
        # Safe to mark: render_html disables raw HTML, then nh3 sanitizes what Markdown produced.
        return format_html('<div class="knowledge-preview">{}</div>', mark_safe(render_html(article.body)))  # noqa: S308

    @admin.action(description=_("Publish the latest revision of the selected articles"), permissions=["curate"])
    def publish(self, request, queryset) -> None:
        for article in queryset:
            article_publish(actor=request.user, article=article)
        count = len(queryset)
        self.message_user(request, ngettext("%d article published.", "%d articles published.", count) % count)

    @admin.action(description=_("Archive the selected articles"), permissions=["curate"])
    def archive(self, request, queryset) -> None:
        for article in queryset:
            article_archive(actor=request.user, article=article)
        count = len(queryset)
        self.message_user(request, ngettext("%d article archived.", "%d articles archived.", count) % count)

    @admin.action(description=_("Reindex the selected articles"), permissions=["curate"])
    def reindex(self, request, queryset) -> None:
        published = [article for article in queryset if article.status == Article.Status.PUBLISHED]
        for article in published:
            reindex_enqueue(actor=request.user, article=article, reason="admin")
        count, skipped = len(published), len(queryset) - len(published)
        self.message_user(
            request, ngettext("%d article queued for indexing.", "%d articles queued for indexing.", count) % count
        )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%d article skipped: only published articles are indexed.",
                    "%d articles skipped: only published articles are indexed.",
                    skipped,
                )
                % skipped,
                messages.WARNING,
            )


@admin.register(ArticleRevision)
class ArticleRevisionAdmin(ReadOnlyAdmin):
    list_display = ("article", "number", "title", "author", "note", "created_at")
    list_select_related = ("article", "author")
    list_filter = ("article__language",)
    search_fields = ("article__slug", "title", "note")
    fields = ("article", "number", "title", "language", "tags", "body", "author", "note", "created_at")
    readonly_fields = fields
    actions = ["restore"]

    @admin.action(
        description=_("Restore the selected revision (as a new revision of its article)"), permissions=["curate"]
    )
    def restore(self, request, queryset) -> None:
        revisions = list(queryset.select_related("article"))
        if len({revision.article_id for revision in revisions}) != len(revisions):
            self.message_user(request, _("Select at most one revision of each article."), messages.ERROR)
            return
        for revision in revisions:
            article_restore(actor=request.user, article=revision.article, revision=revision)
        self.message_user(
            request,
            ngettext(
                "%d revision restored. Publish its article to make it live.",
                "%d revisions restored. Publish their articles to make them live.",
                len(revisions),
            )
            % len(revisions),
        )


@admin.register(ReindexJob)
class ReindexJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "reason", "article", "state", "progress", "requested_by", "created_at", "finished_at")
    list_filter = ("state",)
    list_select_related = ("article", "requested_by")
    fields = (
        "reason",
        "article",
        "state",
        "progress",
        "total",
        "done",
        "error",
        "requested_by",
        "created_at",
        "finished_at",
    )
    readonly_fields = fields

    @admin.display(description=_("Progress"))
    def progress(self, job: ReindexJob) -> str:
        return format_html('<progress max="100" value="{}"></progress> {} %', job.percent, job.percent)
