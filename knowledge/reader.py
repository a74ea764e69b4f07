"""The page where practice members read a published article: what a citation in the chat links to."""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from knowledge.markdown import render_html
from knowledge.selectors import published_article_get


@login_required
def article_read(request, slug: str):
    """The published revision only: drafts, archived articles and unpublished edits are never shown here."""
    article = published_article_get(slug)
    if article is None:
        raise Http404("No published article here.")
    revision = article.published_revision
    context = {"article": article, "revision": revision, "html": render_html(revision.body)}
    return render(request, "knowledge/article_read.html", context)
