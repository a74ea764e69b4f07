"""The staff console of the knowledge base (/console/knowledge/), through Django's test client."""

import json
import re
from html import unescape
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from knowledge.models import Article, ReindexJob
from knowledge.services import ArticleContent, article_update
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HOSTILE = '# Hello\n\n<script>alert(1)</script>\n\n<img src=x onerror="alert(2)">\n\n[click](javascript:alert(3))\n'


@pytest.fixture(autouse=True)
def _english_after_each_test():
    yield
    translation.activate(settings.LANGUAGE_CODE)  # a request in French must not leak into the next test


@pytest.fixture
def staff():
    return UserFactory(username="sam", first_name="Sam", last_name="Support", platform_role="support")


@pytest.fixture
def console(client, staff):
    client.force_login(staff)
    return client


def page_text(response) -> str:
    return page_text_of(response.content.decode())


def listed(response) -> list[str]:
    """The titles of the articles in the list's table."""
    return [
        unescape(title) for title in re.findall(r'<th scope="row">\s*<a [^>]*>([^<]*)</a>', response.content.decode())
    ]


def edit_url(article) -> str:
    return reverse("knowledge:article-edit", args=[article.pk])


def form_of(article, **changes) -> dict:
    fields = {"title": article.title, "language": article.language, "tags": ", ".join(article.tags)}
    return {**fields, "body": article.body, "note": "", "action": "save", **changes}


# --- Who may open it --------------------------------------------------------------------------------------------


def test_anonymous_people_are_sent_to_log_in(client):
    response = client.get(reverse("knowledge:articles"))

    assert response.status_code == 302
    assert response.headers["Location"] == f"{reverse('login')}?next=/console/knowledge/"


@pytest.mark.parametrize(
    "url_name",
    ["knowledge:articles", "knowledge:article-new", "knowledge:status"],
)
def test_practice_members_get_a_403_page(client, url_name):
    member = UserFactory(username="anna")
    MembershipFactory(user=member, role="practitioner")
    client.force_login(member)

    response = client.get(reverse(url_name))

    assert response.status_code == 403
    assert "This page is for support staff" in page_text(response)


def test_members_cannot_write_either(client, make_article):
    article = make_article()
    client.force_login(UserFactory(username="tom"))

    responses = [
        client.post(edit_url(article), form_of(article, title="Hacked", action="publish")),
        client.post(reverse("knowledge:article-archive", args=[article.pk])),
        client.post(reverse("knowledge:revision-restore", args=[article.pk, 1])),
        client.post(reverse("knowledge:preview"), {"body": "x"}),
        client.post(reverse("knowledge:reindex")),
    ]

    assert [response.status_code for response in responses] == [403] * 5
    assert Article.objects.get().status == "draft" and Article.objects.get().title == article.title
    assert not ReindexJob.objects.exists()


def test_staff_see_the_console_link_and_members_do_not(client, staff):
    client.force_login(staff)
    assert reverse("knowledge:articles") in client.get(reverse("home")).content.decode()

    client.force_login(UserFactory(username="tom"))
    assert reverse("knowledge:articles") not in client.get(reverse("home")).content.decode()


def test_an_unknown_article_is_404(console):
    assert console.get(reverse("knowledge:article-edit", args=[999999])).status_code == 404
    assert console.get(reverse("knowledge:revisions", args=[999999])).status_code == 404


# --- The list -----------------------------------------------------------------------------------------------------


def test_an_empty_knowledge_base_says_how_to_start(console):
    text = page_text(console.get(reverse("knowledge:articles")))

    assert "No articles yet." in text
    assert "Write the first article" in text
    assert "import_articles" in text
    assert "No reindex has run yet." in text


def test_the_list_shows_status_index_state_and_unpublished_changes(console, make_article, staff):
    live = make_article("waiting-list", title="Waiting list", publish=True)
    article_update(actor=staff, article=live, content=content_of(live, body="Edited.\n"))
    make_article("sms-reminders", title="SMS reminders")

    response = console.get(reverse("knowledge:articles"))

    rows = [page_text_of(row) for row in re.findall(r"<tr>.*?</tr>", response.content.decode(), re.S)[1:]]
    assert rows[0].startswith("SMS reminders sms-reminders en Draft Not indexed")
    assert rows[1].startswith("Waiting list waiting-list en Published Unpublished changes Waiting to be indexed")
    assert "2 articles" in page_text(response)


def test_the_list_filters_and_says_when_nothing_matches(console, make_article):
    make_article("waiting-list", title="Waiting list", publish=True)
    make_article("liste-attente", title="Liste d'attente", language="fr")

    published = console.get(reverse("knowledge:articles"), {"status": "published"})
    french = console.get(reverse("knowledge:articles"), {"language": "fr"})
    words = console.get(reverse("knowledge:articles"), {"q": "attente"})
    nothing = page_text(console.get(reverse("knowledge:articles"), {"q": "zebra"}))

    assert listed(published) == ["Waiting list"]
    assert listed(french) == listed(words) == ["Liste d'attente"]
    assert "No article matches these filters." in nothing and "Show every article" in nothing


def test_the_list_is_paginated_with_a_constant_number_of_queries(console, make_article):
    make_article("article-00")
    with CaptureQueriesContext(connection) as one:
        console.get(reverse("knowledge:articles"))
    for n in range(1, 27):
        make_article(f"article-{n:02}", publish=n % 3 == 0)

    with CaptureQueriesContext(connection) as many:
        first = console.get(reverse("knowledge:articles"))
    last = console.get(reverse("knowledge:articles"), {"page": 2})

    assert len(many) == len(one)
    assert "Page 1 of 2" in page_text(first) and "Article 26" not in page_text(first)
    assert "Article 26" in page_text(last)


# --- Writing --------------------------------------------------------------------------------------------------


def test_creating_an_article_saves_a_draft_with_its_first_revision(console, staff):
    response = console.post(
        reverse("knowledge:article-new"),
        {"title": "Waiting list", "slug": "", "language": "en", "tags": "a, b", "body": "Text.", "action": "save"},
    )

    article = Article.objects.get()
    assert response.status_code == 302 and response.headers["Location"] == edit_url(article)
    assert (article.slug, article.status, article.tags) == ("waiting-list", "draft", ["a", "b"])
    assert article.revisions.get().author == staff
    assert "Saved as a draft." in page_text(console.get(edit_url(article)))


def test_a_duplicate_slug_is_shown_next_to_the_field(console, make_article):
    make_article("waiting-list")

    response = console.post(
        reverse("knowledge:article-new"),
        {"title": "Waiting list", "slug": "waiting-list", "language": "en", "body": "Text.", "action": "save"},
    )

    assert response.status_code == 200
    assert "An article with this slug already exists." in page_text(response)
    assert Article.objects.count() == 1


def test_a_missing_text_is_refused_with_a_message(console, make_article):
    article = make_article()

    response = console.post(edit_url(article), form_of(article, body=""))

    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()
    assert article.revisions.count() == 1


def test_saving_an_edit_creates_a_revision_and_an_unchanged_save_does_not(console, make_article, staff):
    article = make_article()

    console.post(edit_url(article), form_of(article, body="New text.\n", note="clearer steps"))
    unchanged = console.post(edit_url(article), form_of(Article.objects.get(), note="nothing"), follow=True)

    revision = article.revisions.get(number=2)
    assert (revision.body, revision.note, revision.author) == ("New text.\n", "clearer steps", staff)
    assert article.revisions.count() == 2
    assert "Nothing changed: no new revision was saved." in page_text(unchanged)


def test_the_preview_endpoint_sanitizes(console):
    response = console.post(reverse("knowledge:preview"), {"body": HOSTILE})

    html = json.loads(response.content)["html"]
    assert "<h1>Hello</h1>" in html
    assert_harmless(html)


def test_the_preview_button_renders_without_saving(console, make_article):
    article = make_article()

    response = console.post(edit_url(article), form_of(article, body=HOSTILE, action="preview"))

    preview = re.search(r'<div id="kb-preview".*?</section>', response.content.decode(), re.S).group(0)
    assert response.status_code == 200
    assert "<h1>Hello</h1>" in preview
    assert_harmless(preview)
    assert article.revisions.count() == 1
    assert "&lt;script&gt;" in response.content.decode()  # in the textarea, as text


def test_publish_saves_publishes_and_enqueues_a_reindex(
    console, make_article, queued, django_capture_on_commit_callbacks
):
    article = make_article()

    with django_capture_on_commit_callbacks(execute=True):
        response = console.post(
            edit_url(article), form_of(article, body="Final text.\n", action="publish"), follow=True
        )

    article.refresh_from_db()
    job = ReindexJob.objects.get()
    assert (article.status, article.index_state, article.published_revision.number) == ("published", "pending", 2)
    assert queued == [job.pk] and job.article_id == article.pk
    text = page_text(response)
    assert "Published. Alfred will use it once it is indexed." in text
    assert "Waiting to be indexed" in text


def test_archive(console, make_article):
    article = make_article(publish=True)

    response = console.post(reverse("knowledge:article-archive", args=[article.pk]), follow=True)

    article.refresh_from_db()
    assert article.status == "archived"
    assert "Archived: Alfred no longer uses this article." in page_text(response)
    assert "Archive this article" not in page_text(response)


def test_the_history_lists_revisions_and_restore_makes_a_new_one(console, make_article, staff):
    article = make_article(body="First text.\n", publish=True)
    article_update(actor=staff, article=article, content=content_of(article, body="Second text.\n"), note="v2")

    history = page_text(console.get(reverse("knowledge:revisions", args=[article.pk])))
    response = console.post(reverse("knowledge:revision-restore", args=[article.pk, 1]), follow=True)

    assert re.search(r"2 .* Sam Support v2 .* Current text", history)
    assert re.search(r"1 Published .* Eve Editor created", history)
    article.refresh_from_db()
    assert (article.body, article.latest_revision.number) == ("First text.\n", 3)
    assert article.latest_revision.note == "restored revision 1"
    assert "Revision 1 restored as a new revision." in page_text(response)
    again = console.post(reverse("knowledge:revision-restore", args=[article.pk, 1]), follow=True)
    assert "Revision 1 has the same text as the current one: nothing was restored." in page_text(again)
    assert article.revisions.count() == 3
    assert console.post(reverse("knowledge:revision-restore", args=[article.pk, 9])).status_code == 404


# --- Reindexing and its progress -------------------------------------------------------------------------------


def test_reindex_everything_queues_a_job_and_the_list_shows_its_progress(
    console, make_article, queued, django_capture_on_commit_callbacks
):
    make_article(publish=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = console.post(reverse("knowledge:reindex"), follow=True)

    job = ReindexJob.objects.get(reason="everything")
    assert queued == [job.pk]
    text = page_text(response)
    assert "Reindexing every published article." in text
    assert "Reindex of every article: Queued, 0 of 0 articles (0%)" in text
    assert 'data-job-active="true"' in response.content.decode()
    assert re.search(r'<progress id="kb-job-progress" max="100" value="0"', response.content.decode())


def test_the_status_endpoint_reports_the_job_and_index_states(console, make_article):
    article = make_article(publish=True)
    ReindexJob.objects.create(reason="everything", state="running", total=4, done=1)

    status = console.get(reverse("knowledge:status"), {"ids": f"{article.pk},999999"}).json()

    assert status["articles"] == {str(article.pk): {"index_state": "pending", "label": "Waiting to be indexed"}}
    assert status["job"]["active"] is True and status["job"]["percent"] == 25
    assert status["job"]["text"] == "Reindex of every article: Running, 1 of 4 articles (25%)"
    assert console.get(reverse("knowledge:status"), {"ids": "1,x"}).status_code == 400


def test_a_reindex_that_found_nothing_to_do_is_not_shown(console, make_article):
    # A fresh install: the worker queues a reindex at start-up for the articles still waiting, and by the time
    # it runs their own jobs have indexed them, so it ends "Done, 0 of 0 articles".
    article = make_article("waiting-list", title="Waiting list", publish=True)
    ReindexJob.objects.create(article=article, reason="published", state="done", total=1, done=1)
    ReindexJob.objects.create(reason="stale or missing index", state="done", total=0, done=0)

    text = page_text(console.get(reverse("knowledge:articles")))
    status = console.get(reverse("knowledge:status")).json()

    assert "Reindex of “Waiting list”: Done, 1 of 1 article (100%)" in text
    assert "0 of 0" not in text
    assert status["job"]["text"] == "Reindex of “Waiting list”: Done, 1 of 1 article (100%)"
    assert status["job"]["active"] is False


def test_only_reindexes_that_found_nothing_to_do_read_as_none_yet(console):
    ReindexJob.objects.create(reason="stale or missing index", state="done", total=0, done=0)

    response = console.get(reverse("knowledge:articles"))

    assert "No reindex has run yet." in page_text(response)
    assert re.search(r'<progress id="kb-job-progress" [^>]* hidden>', response.content.decode())
    assert console.get(reverse("knowledge:status")).json()["job"] is None


# --- Django admin -------------------------------------------------------------------------------------------------


def test_the_admin_lists_articles_and_shows_a_sanitized_preview(admin_client, make_article):
    article = make_article(body=HOSTILE)

    listing = admin_client.get(reverse("admin:knowledge_article_changelist"), {"q": "waiting"})
    detail = admin_client.get(reverse("admin:knowledge_article_change", args=[article.pk]))

    assert listing.status_code == detail.status_code == 200
    assert "Waiting list" in page_text(listing)
    preview = re.search(r'<div class="knowledge-preview">.*?</div>', detail.content.decode(), re.S).group(0)
    assert "<h1>Hello</h1>" in preview
    assert_harmless(preview)
    assert edit_url(article) in detail.content.decode()


def test_admin_actions_go_through_the_services(admin_client, make_article, django_capture_on_commit_callbacks):
    draft, live = make_article("draft-one"), make_article("live-one", publish=True)
    changelist = reverse("admin:knowledge_article_changelist")

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(changelist, {"action": "publish", "_selected_action": [draft.pk]})
        admin_client.post(changelist, {"action": "archive", "_selected_action": [live.pk]})
        admin_client.post(changelist, {"action": "reindex", "_selected_action": [draft.pk, live.pk]})

    draft.refresh_from_db()
    live.refresh_from_db()
    assert (draft.status, live.status) == ("published", "archived")
    assert list(ReindexJob.objects.order_by("id").values_list("article_id", "reason")) == [
        (live.pk, "published"),
        (draft.pk, "published"),
        (draft.pk, "admin"),
    ]


def test_the_admin_restores_a_revision_and_shows_job_progress(admin_client, make_article, staff):
    article = make_article(body="First text.\n")
    article_update(actor=staff, article=article, content=content_of(article, body="Second text.\n"))
    ReindexJob.objects.create(reason="everything", state="running", total=4, done=3)

    admin_client.post(
        reverse("admin:knowledge_articlerevision_changelist"),
        {"action": "restore", "_selected_action": [article.revisions.get(number=1).pk]},
    )
    jobs = admin_client.get(reverse("admin:knowledge_reindexjob_changelist"))

    article.refresh_from_db()
    assert (article.body, article.latest_revision.note) == ("First text.\n", "restored revision 1")
    assert '<progress max="100" value="75"></progress> 75 %' in jobs.content.decode()


# --- Helpers ------------------------------------------------------------------------------------------------------


def content_of(article, **changes) -> ArticleContent:
    fields = {"title": article.title, "language": article.language, "body": article.body, "tags": tuple(article.tags)}
    return ArticleContent(**(fields | changes))


def page_text_of(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.found.extend((tag, name, value) for name, value in attrs)
        self.found.append((tag, "", None))


def assert_harmless(html: str) -> None:
    """No script element, no event-handler attribute, no javascript: link."""
    collector = _Collector()
    collector.feed(html)
    assert not [tag for tag, _, _ in collector.found if tag in ("script", "iframe", "object")]
    assert not [name for _, name, _ in collector.found if name.startswith("on")]
    assert not [value for _, _, value in collector.found if value and "javascript:" in value.lower()]
