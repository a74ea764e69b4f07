"""Staff console pages of the knowledge base: list, write, preview, publish, archive, restore, reindex.

Server-rendered; static/knowledge/console.js only adds a live preview and refreshes index states while a
worker indexes. Every write goes through knowledge.services; every preview through knowledge.markdown.render_html.
"""

from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from governance.errors import AlfredError, Conflict, NotFound
from knowledge.indexing import REINDEX_EVERYTHING
from knowledge.markdown import render_html
from knowledge.models import Article, ReindexJob
from knowledge.selectors import (
    article_get_for_staff,
    articles_for_staff,
    reindex_job_latest,
    unpublished_changes,
)
from knowledge.services import (
    ArticleContent,
    article_archive,
    article_create,
    article_publish,
    article_restore,
    article_update,
    reindex_enqueue,
)

ARTICLES_PER_PAGE = 25
REVISIONS_PER_PAGE = 50
STATUS_MAX_IDS = 100  # a page shows at most ARTICLES_PER_PAGE: more ids is not the page asking
ACTIVE_JOB_STATES = (ReindexJob.State.QUEUED, ReindexJob.State.RUNNING)


def job_view(job: ReindexJob | None) -> dict | None:
    """A reindex job as the page and the status endpoint show it (one wording for both)."""
    if job is None:
        return None
    what = _("Reindex of “%(title)s”") % {"title": job.article.title} if job.article else _("Reindex of every article")
    progress = ngettext("%(done)s of %(total)s article", "%(done)s of %(total)s articles", job.total) % {
        "done": job.done,
        "total": job.total,
    }
    percent = 0 if job.state == ReindexJob.State.QUEUED else job.percent  # a queued job counts nothing yet
    text = _("%(what)s: %(state)s, %(progress)s (%(percent)s%%)") % {
        "what": what,
        "state": job.get_state_display(),
        "progress": progress,
        "percent": percent,
    }
    return {
        "id": job.pk,
        "state": job.state,
        "active": job.state in ACTIVE_JOB_STATES,
        "percent": percent,
        "text": text,
    }


# --- Access -------------------------------------------------------------------------------------------------


def staff_required(view):
    """Logged in (else to the login page) and support staff or superuser (else a 403 page saying so)."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_support_staff:
            return render(request, "knowledge/staff_only.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def _article_or_404(article_id: int) -> Article:
    try:
        return article_get_for_staff(article_id=article_id)
    except NotFound:
        raise Http404("No such article.") from None


# --- Forms (parsing and labels only: the rules are the services') -------------------------------------------


class FilterForm(forms.Form):
    q = forms.CharField(label=gettext_lazy("Words"), max_length=200, required=False)
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False)
    language = forms.ChoiceField(label=gettext_lazy("Language"), required=False)

    def __init__(self, *args, languages: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [("", _("Any status")), *Article.Status.choices]
        self.fields["language"].choices = [("", _("Any language")), *((code, code) for code in languages)]


class ArticleForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    slug = forms.CharField(
        label=gettext_lazy("Slug"),
        max_length=120,
        required=False,
        help_text=gettext_lazy(
            "The article's name in links: letters, digits and hyphens. Made from the title if empty."
        ),
    )
    language = forms.CharField(
        label=gettext_lazy("Language"),
        max_length=8,
        initial="en",
        help_text=gettext_lazy("A language code such as en, fr or de."),
    )
    tags = forms.CharField(
        label=gettext_lazy("Tags"), max_length=500, required=False, help_text=gettext_lazy("Separated by commas.")
    )
    body = forms.CharField(
        label=gettext_lazy("Text (Markdown)"),
        strip=False,
        widget=forms.Textarea(attrs={"rows": 22, "spellcheck": "true"}),
        help_text=gettext_lazy("Markdown: # headings, **bold**, lists, links. HTML is shown as text, never run."),
    )
    note = forms.CharField(
        label=gettext_lazy("What changed"),
        max_length=200,
        required=False,
        help_text=gettext_lazy("Optional. Shown in the revision history."),
    )

    def __init__(self, *args, creating: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if not creating:
            del self.fields["slug"]  # an article keeps its slug: links and citations use it

    def content(self) -> ArticleContent:
        data = self.cleaned_data
        tags = tuple(tag.strip() for tag in data["tags"].split(",") if tag.strip())
        return ArticleContent(title=data["title"], language=data["language"], body=data["body"], tags=tags)

    def add_service_error(self, error: AlfredError) -> None:
        """Show a refusal of the services next to the field it is about, in the page's language."""
        if isinstance(error, Conflict) and "slug" in self.fields:
            self.add_error("slug", _("An article with this slug already exists."))
            return
        known = {
            "title_required": ("title", _("A title is required.")),
            "body_required": ("body", _("The article has no text.")),
            "language_invalid": ("language", _("A language code such as en, fr or de is required.")),
            "slug_required": ("slug", _("A slug (letters, digits, hyphens) is required.")),
        }
        field, message = known.get(error.code, (None, error.detail))
        self.add_error(field if field in self.fields else None, message)


def _initial(article: Article) -> dict:
    return {"title": article.title, "language": article.language, "tags": ", ".join(article.tags), "body": article.body}


# --- Pages ----------------------------------------------------------------------------------------------------


@staff_required
@require_GET
def article_list(request):
    languages = list(Article.objects.order_by("language").values_list("language", flat=True).distinct())
    filters = FilterForm(request.GET, languages=languages)
    criteria = {name: value for name, value in filters.cleaned_data.items() if value} if filters.is_valid() else {}
    page = Paginator(articles_for_staff(**criteria), ARTICLES_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    for article in page.object_list:
        article.unpublished_changes = unpublished_changes(article)
    return render(
        request,
        "knowledge/article_list.html",
        {
            "filters": filters,
            "filtered": bool(criteria),
            "page_obj": page,
            "job": job_view(reindex_job_latest()),
        },
    )


@staff_required
@require_http_methods(["GET", "POST"])
def article_new(request):
    action = request.POST.get("action", "save")
    form = _form(request, action, creating=True)
    if form.is_bound and form.is_valid():
        try:
            article = article_create(
                actor=request.user,
                slug=form.cleaned_data["slug"],
                content=form.content(),
                publish=action == "publish",
                note=form.cleaned_data["note"],
            )
        except AlfredError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _published_message() if action == "publish" else _("Saved as a draft."))
            return redirect("knowledge:article-edit", article_id=article.pk)
    return render(request, "knowledge/article_edit.html", {"form": form, "article": None, **_preview(request, "")})


@staff_required
@require_http_methods(["GET", "POST"])
def article_edit(request, article_id: int):
    article = _article_or_404(article_id)
    action = request.POST.get("action", "save")
    form = _form(request, action, creating=False, initial=_initial(article))
    if form.is_bound and form.is_valid():
        try:
            with transaction.atomic():  # "Publish" saves and publishes as one change
                changed = article_update(
                    actor=request.user, article=article, content=form.content(), note=form.cleaned_data["note"]
                )
                if action == "publish":
                    article_publish(actor=request.user, article=article)
        except AlfredError as error:
            form.add_service_error(error)
        else:
            messages.success(request, _save_message(action=action, changed=changed))
            return redirect("knowledge:article-edit", article_id=article.pk)
    context = {"form": form, "article": article, "unpublished_changes": unpublished_changes(article)}
    return render(request, "knowledge/article_edit.html", {**context, **_preview(request, article.body)})


def _form(request, action: str, *, creating: bool, initial: dict | None = None) -> ArticleForm:
    """Bound to what was posted; for "Preview" (nothing is saved) only filled with it, so no errors show yet."""
    if request.method != "POST":
        return ArticleForm(creating=creating, initial=initial)
    if action == "preview":
        return ArticleForm(creating=creating, initial=request.POST.dict())
    return ArticleForm(request.POST, creating=creating)


def _preview(request, saved_body: str) -> dict:
    """The rendering shown beside the editor: of the text being edited if posted, else of the saved text."""
    body = request.POST.get("body", "") if request.method == "POST" else saved_body
    return {"preview_html": render_html(body) if body.strip() else ""}


def _published_message() -> str:
    return _("Published. Alfred will use it once it is indexed.")


def _save_message(*, action: str, changed: bool) -> str:
    if action == "publish":
        return _published_message()
    return _("Saved as a new revision.") if changed else _("Nothing changed: no new revision was saved.")


@staff_required
@require_POST
def article_archive_view(request, article_id: int):
    article = _article_or_404(article_id)
    article_archive(actor=request.user, article=article)
    messages.success(request, _("Archived: Alfred no longer uses this article."))
    return redirect("knowledge:article-edit", article_id=article.pk)


@staff_required
@require_GET
def revision_list(request, article_id: int):
    article = _article_or_404(article_id)
    revisions = article.revisions.select_related("author").order_by("-number")
    page = Paginator(revisions, REVISIONS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "knowledge/revision_list.html", {"article": article, "page_obj": page})


@staff_required
@require_POST
def revision_restore(request, article_id: int, number: int):
    article = _article_or_404(article_id)
    revision = article.revisions.filter(number=number).first()
    if revision is None:
        raise Http404("No such revision.")
    restored = article_restore(actor=request.user, article=article, revision=revision)
    if restored.latest_revision.number == article.latest_revision_number:
        message = _("Revision %(number)s has the same text as the current one: nothing was restored.")
    else:
        message = _("Revision %(number)s restored as a new revision. Publish it to make it the one Alfred uses.")
    messages.success(request, message % {"number": number})
    return redirect("knowledge:article-edit", article_id=article.pk)


# --- Small endpoints for console.js and the reindex button ----------------------------------------------------


@staff_required
@require_POST
def preview(request):
    """The sanitized rendering of posted Markdown (the live preview of the editor)."""
    return JsonResponse({"html": render_html(request.POST.get("body", ""))})


@staff_required
@require_GET
def index_status(request):
    """The latest reindex job and the index state of the articles a page shows (`?ids=1,2,3`)."""
    try:
        ids = [int(value) for value in request.GET.get("ids", "").split(",") if value.strip()][:STATUS_MAX_IDS]
    except ValueError:
        return HttpResponseBadRequest("ids must be numbers separated by commas")
    articles = {
        str(article.pk): {"index_state": article.index_state, "label": article.get_index_state_display()}
        for article in Article.objects.filter(pk__in=ids).only("pk", "index_state")
    }
    return JsonResponse({"job": job_view(reindex_job_latest()), "articles": articles})


@staff_required
@require_POST
def reindex_everything(request):
    reindex_enqueue(actor=request.user, reason=REINDEX_EVERYTHING)
    messages.success(request, _("Reindexing every published article. The progress shows below."))
    return redirect("knowledge:articles")
