"""The staff knowledge API: who may call it, article curation through the services, revisions, and search.

Errors are `{"code", "detail"}` like the rest of the platform API. Publishing enqueues a reindex job once the
transaction commits (conftest's `queued` records what would reach Celery).
"""

import os
from html.parser import HTMLParser

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from governance.models import SecurityEvent
from governance.tokens import issue_local_user_token
from knowledge.indexing import index_article
from knowledge.models import Article, Chunk, ReindexJob
from knowledge.services import ArticleContent, article_update
from tests.factories import MembershipFactory, UserFactory
from tests.governance.conftest import keys  # noqa: F401 — the token tests' key ring, reused here
from tests.governance.jwt_helpers import service_claims

pytestmark = pytest.mark.django_db

ARTICLES = "/api/v1/articles/"
SEARCH = "/api/v1/knowledge/search/"
GUIDE = "Patients join the waiting list when no slot suits them.\n\n## Turn it on\n\nOpen Settings > Waiting list.\n"


@pytest.fixture
def staff():
    return UserFactory(username="sam", first_name="Sam", last_name="Support", platform_role="support")


@pytest.fixture
def member():
    user = UserFactory(username="anna", first_name="Anna", last_name="Novak")
    MembershipFactory(user=user, role="practitioner")
    return user


@pytest.fixture
def api(as_user, staff) -> APIClient:
    return as_user(staff)


def body(response) -> dict:
    return response.json()


def create(api, **fields):
    payload = {"title": "Waiting list", "language": "en", "body": GUIDE, **fields}
    return api.post(ARTICLES, payload, format="json")


# --- Who may call it ------------------------------------------------------------------------------------------

ENDPOINTS = [
    ("get", ARTICLES),
    ("post", ARTICLES),
    ("get", "/api/v1/articles/{id}/"),
    ("patch", "/api/v1/articles/{id}/"),
    ("put", "/api/v1/articles/{id}/"),
    ("post", "/api/v1/articles/{id}/publish/"),
    ("post", "/api/v1/articles/{id}/archive/"),
    ("get", "/api/v1/articles/{id}/revisions/"),
    ("post", "/api/v1/articles/{id}/revisions/1/restore/"),
    ("get", SEARCH + "?q=waiting"),
]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_anonymous_is_401(make_article, method, url):
    article = make_article()

    response = getattr(APIClient(), method)(url.format(id=article.pk), {}, format="json")

    assert response.status_code == 401
    assert body(response)["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_a_practice_member_is_403_and_it_is_recorded(make_article, as_user, member, method, url):
    article = make_article()

    response = getattr(as_user(member), method)(url.format(id=article.pk), {"title": "Hacked"}, format="json")

    assert response.status_code == 403
    assert body(response) == {"code": "staff_only", "detail": "Only support staff can use the knowledge base API."}
    assert Article.objects.get().title == article.title
    assert SecurityEvent.objects.filter(kind="access_denied", reason="staff_only", user=member).count() == 1


def test_support_staff_and_superusers_may_call_it(as_user, staff, make_article):
    make_article()
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)

    assert as_user(staff).get(ARTICLES).status_code == 200
    assert as_user(admin).get(ARTICLES).status_code == 200


def test_a_compliance_officer_is_403(as_user):
    officer = UserFactory(username="carla", platform_role="compliance")

    assert as_user(officer).get(ARTICLES).status_code == 403


def test_a_browser_write_needs_the_csrf_token(staff):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(staff)

    response = create(client)

    assert response.status_code == 403
    assert "CSRF" in body(response)["detail"]
    assert not Article.objects.exists()


def _tokens(ring, user) -> dict:
    return {
        "Authorization": f"Bearer {ring.agents.sign(service_claims())}",
        "X-User-Token": issue_local_user_token(user),
    }


def test_no_service_may_call_it_by_default(keys, staff):  # noqa: F811
    response = APIClient().get(ARTICLES, headers=_tokens(keys, staff))

    assert response.status_code == 403
    assert body(response)["code"] == "caller_not_allowed"


def test_a_service_on_the_knowledge_list_acts_with_the_users_authority(keys, settings, staff, member):  # noqa: F811
    settings.API_ALLOWED_CALLERS = {**settings.API_ALLOWED_CALLERS, "knowledge": ["agents"]}

    as_staff = APIClient().get(ARTICLES, headers=_tokens(keys, staff))
    as_member = APIClient().get(ARTICLES, headers=_tokens(keys, member))

    assert as_staff.status_code == 200
    assert as_member.status_code == 403 and body(as_member)["code"] == "staff_only"


# --- Articles -------------------------------------------------------------------------------------------------


def test_create_makes_a_draft_with_its_first_revision(api, staff):
    response = create(api, tags=["appointments", "waiting list"], note="first draft")

    article = Article.objects.get()
    assert response.status_code == 201
    assert body(response) | {"updated_at": None, "indexed_at": None} == {
        "id": article.pk,
        "slug": "waiting-list",
        "title": "Waiting list",
        "language": "en",
        "tags": ["appointments", "waiting list"],
        "status": "draft",
        "index_state": "not_indexed",
        "index_error": "",
        "indexed_at": None,
        "published_revision": None,
        "latest_revision": 1,
        "has_unpublished_changes": False,
        "updated_at": None,
        "updated_by": {"id": staff.pk, "name": "Sam Support", "first_name": "Sam", "last_name": "Support"},
        "body": GUIDE,
        "html": body(response)["html"],
        "created_at": body(response)["created_at"],
    }
    assert "<h2>Turn it on</h2>" in body(response)["html"]
    assert list(article.revisions.values_list("number", "note", "author")) == [(1, "first draft", staff.pk)]


def test_create_and_publish_at_once(api, queued):
    response = create(api, publish=True)

    assert response.status_code == 201
    assert (body(response)["status"], body(response)["published_revision"]) == ("published", 1)


def test_a_duplicate_slug_is_409(api, make_article):
    make_article("waiting-list")

    response = create(api, slug="Waiting List")

    assert response.status_code == 409
    assert body(response) == {"code": "conflict", "detail": "An article with the slug 'waiting-list' already exists."}
    assert Article.objects.count() == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"title": "No text"}, "invalid"),
        ({"title": "Bad tags", "body": "x", "tags": "not-a-list"}, "invalid"),
        ({"title": "   ", "body": "Some text"}, "invalid"),
        ({"title": "Blank text", "body": "   "}, "body_required"),
        ({"title": "Bad language", "body": "Text", "language": "e1"}, "language_invalid"),
    ],
)
def test_an_invalid_body_is_400_and_creates_nothing(api, payload, code):
    response = api.post(ARTICLES, payload, format="json")

    assert response.status_code == 400
    assert body(response)["code"] == code
    assert not Article.objects.exists()


def test_a_body_that_is_not_json_is_400(api):
    response = api.post(ARTICLES, "{not json", content_type="application/json")

    assert response.status_code == 400 and body(response)["code"] == "parse_error"


def test_list_filters_by_status_language_and_words(api, make_article):
    make_article("waiting-list", publish=True)
    make_article("liste-d-attente", language="fr", body="Les patients rejoignent la liste.")
    make_article("sms-reminders", body="Reminders go out by SMS the day before.")

    def slugs(query: str) -> list[str]:
        return [row["slug"] for row in body(api.get(ARTICLES + query))["results"]]

    assert slugs("") == slugs("?status=&language=&q=") == ["liste-d-attente", "sms-reminders", "waiting-list"]
    assert slugs("?status=published") == ["waiting-list"]
    assert slugs("?language=fr") == ["liste-d-attente"]
    assert slugs("?q=sms") == ["sms-reminders"]
    assert slugs("?q=the+day+before&status=draft") == ["sms-reminders"]
    assert api.get(ARTICLES + "?status=gone").status_code == 400


def test_list_is_paginated_with_a_constant_number_of_queries(api, make_article):
    make_article("first")
    with CaptureQueriesContext(connection) as one:
        api.get(ARTICLES)
    for n in range(6):
        make_article(f"article-{n}", publish=n % 2 == 0)

    with CaptureQueriesContext(connection) as seven:
        response = api.get(ARTICLES + "?page_size=4&page=2")

    assert len(seven) == len(one)
    assert body(response)["count"] == 7
    assert len(body(response)["results"]) == 3
    assert body(response)["previous"] and not body(response)["next"]


def test_an_unknown_article_is_404(api):
    for response in (
        api.get(f"{ARTICLES}999999/"),
        api.patch(f"{ARTICLES}999999/", {"title": "x"}, format="json"),
        api.post(f"{ARTICLES}999999/publish/"),
        api.get(f"{ARTICLES}999999/revisions/"),
    ):
        assert response.status_code == 404
        assert body(response) == {"code": "not_found", "detail": "No such article."}


def test_the_html_is_sanitized(api, make_article):
    article = make_article(
        body='Hi <script>alert(1)</script> <img src=x onerror="alert(2)">\n\n[x](javascript:alert(3))'
    )

    html = body(api.get(f"{ARTICLES}{article.pk}/"))["html"]

    tags, attributes = parsed(html)
    assert "script" not in tags and "img" not in tags
    assert not [name for name in attributes if name.startswith("on")]
    assert "javascript:" not in " ".join(value or "" for value in attributes.values())


def test_patch_saves_a_new_revision_and_published_readers_keep_the_old_one(api, make_article, staff):
    article = make_article(publish=True)

    response = api.patch(f"{ARTICLES}{article.pk}/", {"title": "Waiting list, new", "note": "renamed"}, format="json")

    assert response.status_code == 200
    assert (body(response)["title"], body(response)["body"]) == ("Waiting list, new", article.body)
    assert (body(response)["latest_revision"], body(response)["published_revision"]) == (2, 1)
    assert body(response)["has_unpublished_changes"] is True
    assert article.revisions.get(number=2).note == "renamed"


def test_put_needs_the_whole_content_and_an_unchanged_put_adds_no_revision(api, make_article):
    article = make_article()
    url = f"{ARTICLES}{article.pk}/"

    partial = api.put(url, {"title": "Only a title"}, format="json")
    same = api.put(url, {"title": article.title, "body": article.body, "language": "en"}, format="json")

    assert partial.status_code == 400 and "body" in body(partial)["fields"]
    assert same.status_code == 200 and body(same)["latest_revision"] == 1


def test_publish_enqueues_a_reindex_once_committed(api, make_article, queued, django_capture_on_commit_callbacks):
    article = make_article()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.post(f"{ARTICLES}{article.pk}/publish/")

    job = ReindexJob.objects.get()
    assert response.status_code == 200
    assert (body(response)["status"], body(response)["index_state"], body(response)["published_revision"]) == (
        "published",
        "pending",
        1,
    )
    assert len(callbacks) == 1 and queued == [job.pk]
    assert (job.article_id, job.reason, job.state) == (article.pk, "published", "queued")


def test_archive_takes_the_article_out_of_search_now(api, make_article):
    article = make_article(publish=True)
    index_article(article.pk)
    assert Chunk.objects.filter(article=article).exists()

    response = api.post(f"{ARTICLES}{article.pk}/archive/")

    assert response.status_code == 200
    assert (body(response)["status"], body(response)["index_state"]) == ("archived", "not_indexed")
    assert not Chunk.objects.filter(article=article).exists()


# --- Revisions --------------------------------------------------------------------------------------------------


def test_revisions_newest_first_with_the_published_one_marked(api, make_article, editor, staff):
    article = make_article(publish=True)
    article_update(actor=staff, article=article, content=content_of(article, body="Second text.\n"), note="v2")

    response = api.get(f"{ARTICLES}{article.pk}/revisions/")

    rows = body(response)["results"]
    assert [(row["number"], row["note"], row["is_published"], row["author"]["id"]) for row in rows] == [
        (2, "v2", False, staff.pk),
        (1, "created", True, editor.pk),
    ]


def test_restore_saves_the_old_content_as_a_new_revision(api, make_article, staff):
    article = make_article(body="First text.\n")
    article_update(actor=staff, article=article, content=content_of(article, body="Second text.\n"))

    response = api.post(f"{ARTICLES}{article.pk}/revisions/1/restore/")

    assert response.status_code == 200
    assert (body(response)["body"], body(response)["latest_revision"]) == ("First text.\n", 3)
    assert article.revisions.get(number=3).note == "restored revision 1"


def test_restoring_an_unknown_revision_is_404(api, make_article):
    article = make_article()

    response = api.post(f"{ARTICLES}{article.pk}/revisions/7/restore/")

    assert response.status_code == 404
    assert body(response) == {"code": "not_found", "detail": "No such revision of this article."}


# --- Search ---------------------------------------------------------------------------------------------------


def test_search_returns_passages_of_published_articles_only(api, make_article):
    published = make_article("waiting-list", body=GUIDE, publish=True)
    draft = make_article("zebra-draft", body="The zebra protocol: a draft about waiting lists for zebras.\n")
    archived = make_article("zebra-archived", body="The zebra protocol, archived.\n", publish=True)
    for article in (published, draft, archived):
        index_article(article.pk)
    api.post(f"{ARTICLES}{archived.pk}/archive/")

    response = api.get(SEARCH, {"q": "zebra protocol waiting list", "language": "en", "limit": 5})

    hits = body(response)["results"]
    assert response.status_code == 200
    assert {hit["slug"] for hit in hits} == {"waiting-list"}
    assert set(hits[0]) == {
        "article_id",
        "chunk_id",
        "slug",
        "title",
        "language",
        "heading_path",
        "text",
        "score",
        "similarity",
        "vector_rank",
        "text_rank",
    }
    assert hits[0]["score"] > 0 and -1 <= hits[0]["similarity"] <= 1


@pytest.mark.parametrize("query", ["", "?q=", "?q=x&limit=0", "?q=x&limit=21"])
def test_search_needs_a_question_and_a_sane_limit(api, query):
    response = api.get(SEARCH + query)

    assert response.status_code == 400 and body(response)["code"] == "invalid"


def test_the_schema_documents_every_endpoint_and_its_authentication_without_warnings(client, capsys):
    schema = client.get("/api/schema/").content.decode()
    call_command("spectacular", "--validate", "--file", os.devnull)

    for path in ("/api/v1/articles/{article_id}/revisions/{number}/restore/", "/api/v1/knowledge/search/"):
        assert path in schema
    assert "X-User-Token" in schema and "sessionid" in schema  # the two tokens (together) or a session
    assert not [line for line in capsys.readouterr().err.splitlines() if "Warning" in line or "Error" in line]


# --- Helpers ------------------------------------------------------------------------------------------------------


def content_of(article, **changes) -> ArticleContent:
    fields = {"title": article.title, "language": article.language, "body": article.body, "tags": tuple(article.tags)}
    return ArticleContent(**(fields | changes))


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attributes: dict[str, str | None] = {}

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes.update(attrs)


def parsed(html: str) -> tuple[list[str], dict]:
    collector = _Collector()
    collector.feed(html)
    return collector.tags, collector.attributes
