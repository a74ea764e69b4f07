"""The pages of what goes wrong (404, 403, 500) in the site's layout, in English and French, and the favicon.

Django uses 404.html, 403.html and 500.html only when DEBUG is off, as pytest-django sets it for the tests.
This module is also a URLconf (the site's URLs, and two views that refuse and fail) for the 403 and 500 pages.
"""

import re
from html import unescape

import pytest
from django.core.exceptions import PermissionDenied
from django.template import loader
from django.test import Client
from django.urls import path, reverse
from django.utils import translation
from playwright.sync_api import expect

from alfred.urls import urlpatterns as site_urlpatterns
from tests.browser import browser, page  # noqa: F401
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def forbidden(request):
    raise PermissionDenied("not for you")


def broken(request):
    raise RuntimeError("a bug")


urlpatterns = [path("test/forbidden/", forbidden), path("test/broken/", broken), *site_urlpatterns]


@pytest.fixture
def pages_urlconf(settings):
    settings.ROOT_URLCONF = __name__


def page_text(response) -> str:
    html = response.content.decode() if hasattr(response, "content") else response
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip())


def assert_in_layout(html: str) -> None:
    """The site's stylesheet, favicon and top bar with the brand linking home."""
    assert '<link rel="stylesheet" href="/static/alfred/alfred.css">' in html
    assert '<link rel="icon" href="/static/alfred/favicon.svg" type="image/svg+xml">' in html
    assert '<a class="brand" href="/">Alfred</a>' in html


# --- 404 ----------------------------------------------------------------------------------------------------------


def test_an_unknown_url_shows_the_404_page_in_the_layout_with_a_way_home(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    html = response.content.decode()
    assert_in_layout(html)
    assert "<title>Page not found · Alfred</title>" in html
    assert "There is no page at this address." in page_text(response)
    assert '<a href="/">Back to the home page</a>' in html
    assert "Not Found" not in html  # not Django's bare page


def test_the_404_page_in_french(client):
    response = client.get("/no-such-page/", headers={"accept-language": "fr"})

    assert response.status_code == 404
    text = page_text(response)
    assert "Page introuvable" in text
    assert "Il n’y a aucune page à cette adresse." in text
    assert "Retour à l’accueil" in text
    assert '<html lang="fr">' in response.content.decode()


def test_a_logged_in_person_sees_the_404_page_with_their_menu(client):
    client.force_login(UserFactory(username="sam", first_name="Sam", last_name="Support", platform_role="support"))

    response = client.get("/console/nothing-here/")

    assert response.status_code == 404
    assert "Sam Support" in page_text(response) and "Page not found" in page_text(response)


# --- 403 ----------------------------------------------------------------------------------------------------------


def test_the_403_page_offers_to_log_in_as_someone_else(client, pages_urlconf):
    client.force_login(UserFactory(username="tom", first_name="Tom", last_name="Fisher"))

    response = client.get("/test/forbidden/?week=3")

    assert response.status_code == 403
    html = response.content.decode()
    assert_in_layout(html)
    text = page_text(response)
    assert "This page is not for this account" in text
    assert "You are logged in as Tom Fisher, and this account may not open this page." in text
    assert "not for you" not in text  # the exception's words are for the logs
    assert '<a href="/">Back to the home page</a>' in html
    # The button logs out, then opens the login page, which comes back here.
    form = re.search(r'<form action="/accounts/logout/" method="post">.*?</form>', html, re.S).group(0)
    after_logout = unescape(re.search(r'name="next" value="([^"]*)"', form).group(1))
    assert after_logout == "/accounts/login/?next=/test/forbidden/%3Fweek%3D3"
    assert "Log in as someone else" in form

    logged_out = client.post("/accounts/logout/", {"next": after_logout})
    assert logged_out.status_code == 302 and logged_out.headers["Location"] == after_logout
    login = client.get(after_logout)
    assert login.status_code == 200 and 'name="next" value="/test/forbidden/?week=3"' in login.content.decode()


def test_the_403_page_for_someone_not_logged_in_offers_to_log_in(client, pages_urlconf):
    response = client.get("/test/forbidden/")

    assert response.status_code == 403
    assert "Log in with an account that may open this page." in page_text(response)
    assert '<a class="button" href="/accounts/login/?next=/test/forbidden/">Log in</a>' in response.content.decode()


def test_the_403_page_in_french(client, pages_urlconf):
    client.force_login(UserFactory(username="tom", first_name="Tom", last_name="Fisher", preferred_language="fr"))

    text = page_text(client.get("/test/forbidden/"))

    assert "Cette page n’est pas accessible avec ce compte" in text
    assert "Vous êtes connecté(e) en tant que Tom Fisher, et ce compte ne peut pas ouvrir cette page." in text
    assert "Se connecter avec un autre compte" in text


# --- 500 ----------------------------------------------------------------------------------------------------------


def test_a_failing_view_shows_the_500_page_in_the_layout(pages_urlconf):
    client = Client(raise_request_exception=False)

    response = client.get("/test/broken/")

    assert response.status_code == 500
    html = response.content.decode()
    assert_in_layout(html)
    assert "Something went wrong" in page_text(response)
    assert "not because of anything you did" in page_text(response)
    assert '<a href="/">Back to the home page</a>' in html
    assert "a bug" not in html


@pytest.mark.parametrize("language", ["en", "fr"])
def test_the_500_page_renders_without_any_context(language):
    """As Django renders it: no request, no user, no context processor."""
    with translation.override(language):
        html = loader.get_template("500.html").render()

    assert_in_layout(html)
    assert f'<html lang="{language}">' in html
    expected = "Un problème est survenu" if language == "fr" else "Something went wrong"
    assert expected in page_text(html)


# --- Favicon ------------------------------------------------------------------------------------------------------


def test_favicon_ico_leads_to_the_svg_mark(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 302  # not permanent: the static file's address may change
    assert response.headers["Location"] == "/static/alfred/favicon.svg"
    svg = client.get(response.headers["Location"])
    assert svg.status_code == 200
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
    body = b"".join(svg.streaming_content) if svg.streaming else svg.content
    assert b'fill="#2457c5"' in body  # the site's accent colour


def test_every_page_links_the_favicon(client):
    html = client.get(reverse("login")).content.decode()

    assert '<link rel="icon" href="/static/alfred/favicon.svg" type="image/svg+xml">' in html


# --- In a browser -------------------------------------------------------------------------------------------------


@pytest.mark.browser
def test_an_unknown_url_in_a_browser_shows_the_404_page_and_the_way_home(page, asgi_server):  # noqa: F811
    response = page.goto(f"{asgi_server}/no-such-page/")

    assert response.status == 404
    expect(page).to_have_title("Page not found · Alfred")
    expect(page.get_by_role("heading", name="Page not found", level=1)).to_be_visible()
    expect(page.get_by_role("banner").get_by_role("link", name="Alfred")).to_be_visible()
    expect(page.get_by_label("Language")).to_be_visible()  # the layout's top bar, not a bare page
    assert page.evaluate("getComputedStyle(document.querySelector('main .card')).backgroundColor") == (
        "rgb(255, 255, 255)"
    )  # styled by the site's stylesheet
    favicon = page.request.get(f"{asgi_server}/favicon.ico")
    assert favicon.ok and favicon.headers["content-type"].startswith("image/svg+xml")

    page.get_by_role("link", name="Back to the home page").click()

    page.wait_for_url(re.compile(r"/accounts/login/"))  # home asks who is there first
    expect(page.get_by_role("heading", name="Log in to Alfred")).to_be_visible()
