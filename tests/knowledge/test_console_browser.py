"""The knowledge base console in Chromium, end to end: a real daphne process serves the pages and a real
Celery worker indexes what the staff member publishes (the local MiniLM model)."""

import re

import pytest
from playwright.sync_api import expect

from knowledge.models import Article, Chunk
from knowledge.retrieval import search
from knowledge.services import ArticleContent, article_create
from tests.browser import browser, log_in, page  # noqa: F401
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

INDEX_TIMEOUT_MS = 120_000  # the worker loads the embeddings model for its first job
NEW_BODY = """Patients join the waiting list when no slot suits them.

## Turn the waiting list on

Open **Settings › Waiting list** and tick the appointment types.

<img src="x" onerror="window.hacked = true">
"""


@pytest.fixture
def draft(transactional_db, asgi_server):
    """Sam (support staff) and a draft article, committed: the server and the worker are other processes."""
    sam = UserFactory(username="sam", first_name="Sam", last_name="Support", platform_role="support")
    content = ArticleContent(title="Waiting list", language="en", body="A first draft.\n")
    return article_create(actor=sam, slug="waiting-list", content=content)


def test_staff_edit_preview_and_publish_an_article_until_it_is_indexed(
    page,  # noqa: F811
    asgi_server,
    draft,
    celery_worker_process,
):
    log_in(page, asgi_server, "sam")
    page.get_by_role("link", name="Knowledge base").click()
    expect(page.get_by_role("heading", name="Knowledge base", level=1)).to_be_visible()
    row = page.get_by_role("row", name=re.compile("Waiting list"))
    expect(row).to_contain_text("Draft")
    expect(row).to_contain_text("Not indexed")

    row.get_by_role("link", name="Waiting list").click()
    page.get_by_label("Text (Markdown)").fill(NEW_BODY)
    page.get_by_label("What changed").fill("steps to turn it on")

    preview = page.locator("#kb-preview")
    expect(preview.get_by_role("heading", name="Turn the waiting list on")).to_be_visible()
    expect(preview.locator("strong")).to_have_text("Settings › Waiting list")
    expect(preview).to_contain_text('<img src="x" onerror="window.hacked = true">')  # shown as text, never run
    assert page.evaluate("window.hacked") is None

    page.get_by_role("button", name="Publish").click()

    expect(page.get_by_role("status").filter(has_text="Published.")).to_have_text(
        "Published. Alfred will use it once it is indexed."
    )
    badge = page.locator("[data-index-state]")
    expect(badge).to_have_text("Indexed", timeout=INDEX_TIMEOUT_MS)  # refreshed by console.js, no reload
    expect(page.locator(".kb-facts")).to_contain_text("Published")

    article = Article.objects.get(pk=draft.pk)
    assert (article.status, article.index_state, article.published_revision.number) == ("published", "indexed", 2)
    assert article.published_revision.note == "steps to turn it on"
    assert Chunk.objects.filter(article=article).exists()
    assert search("how do I turn on the waiting list", language="en")[0].slug == "waiting-list"

    page.get_by_role("link", name="All articles").click()
    expect(page.locator("#kb-job-text")).to_have_text("Reindex of “Waiting list”: Done, 1 of 1 article (100%)")
    expect(page.get_by_role("row", name=re.compile("Waiting list"))).to_contain_text("Indexed")
