"""Local login with a username and password, in Chromium against the live server."""

import pytest
from playwright.sync_api import expect

from tests.browser import browser, page  # noqa: F401
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def anna(transactional_db):
    return UserFactory(username="anna", first_name="Anna", last_name="Novak", password="correct horse battery")


def log_in(page, live_server, username, password):  # noqa: F811
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in", exact=True).click()


def test_login_lands_on_home_with_the_name(page, live_server, anna):  # noqa: F811
    log_in(page, live_server, "anna", "correct horse battery")

    expect(page.get_by_role("heading", name="Hello, Anna Novak")).to_be_visible()
    assert page.url == f"{live_server.url}/"


def test_wrong_password_shows_the_error_and_stays_logged_out(page, live_server, anna):  # noqa: F811
    log_in(page, live_server, "anna", "wrong password")

    expect(page.get_by_role("alert")).to_contain_text("didn't match")
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Log in to Alfred")).to_be_visible()


def test_logout_returns_to_the_login_page(page, live_server, anna):  # noqa: F811
    log_in(page, live_server, "anna", "correct horse battery")
    expect(page.get_by_role("heading", name="Hello, Anna Novak")).to_be_visible()

    page.get_by_role("button", name="Log out").click()

    expect(page.get_by_role("heading", name="Log in to Alfred")).to_be_visible()
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
    page.goto(f"{live_server.url}/")  # the session is gone: home sends us back to log in
    expect(page.get_by_role("heading", name="Log in to Alfred")).to_be_visible()
