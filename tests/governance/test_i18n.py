"""Alfred in French and English: who gets which language, the saved choice, and a complete catalogue."""

import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from governance.models import Membership, User
from support.models import AccessLevel
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

FR_MESSAGES = Path(settings.BASE_DIR) / "locale" / "fr" / "LC_MESSAGES"
PO_KEYWORD = re.compile(r'(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?) "(.*)"$')
PO_ESCAPE = re.compile(r"\\(.)")


@pytest.fixture(autouse=True)
def _english_after_each_test():
    # The test client runs views in this thread: a language a request activated would leak into later tests.
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def anna(db) -> User:
    return UserFactory(username="anna", first_name="Anna", last_name="Novak")


# --- Who gets which language ----------------------------------------------------------------------


def test_login_page_is_french_for_a_browser_asking_for_french(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5")

    page = response.content.decode()
    assert response.headers["Content-Language"] == "fr"
    assert '<html lang="fr">' in page
    assert "Se connecter à Alfred" in page
    assert "Nom d’utilisateur" in page
    assert "Mot de passe" in page
    assert "Log in" not in page


def test_login_page_is_english_by_default(client):
    response = client.get(reverse("login"))

    page = response.content.decode()
    assert response.headers["Content-Language"] == "en"
    assert '<html lang="en">' in page
    assert "Log in to Alfred" in page
    assert "Username" in page
    assert "Se connecter" not in page


def test_a_wrong_password_is_reported_in_french(client, anna):
    response = client.post(reverse("login"), {"username": "anna", "password": "wrong"}, HTTP_ACCEPT_LANGUAGE="fr")

    assert "Votre nom d’utilisateur et votre mot de passe ne correspondent pas." in response.content.decode()


def test_a_users_preferred_language_wins_over_the_browser(client, anna):
    anna.preferred_language = "fr"
    anna.save()
    client.force_login(anna)

    response = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")

    page = response.content.decode()
    assert response.headers["Content-Language"] == "fr"
    assert "Bonjour Anna Novak" in page
    assert "Se déconnecter" in page


def test_a_users_preferred_language_wins_over_the_language_cookie(client, anna):
    anna.preferred_language = "fr"
    anna.save()
    client.force_login(anna)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"  # chosen in this browser before logging in

    response = client.get(reverse("home"))

    assert "Bonjour Anna Novak" in response.content.decode()


def test_a_user_without_a_preference_follows_the_browser(client, anna):
    client.force_login(anna)

    french = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    english = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "Bonjour Anna Novak" in french
    assert "Hello, Anna Novak" in english


# --- Choosing with the selector -------------------------------------------------------------------


def test_the_selector_names_each_language_in_that_language(client, db):
    for accept_language in ("en", "fr"):
        page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE=accept_language).content.decode()

        assert '<option value="en" lang="en"' in page
        assert ">English</option>" in page
        assert ">Français</option>" in page


def test_choosing_a_language_saves_it_on_the_account(client, anna):
    client.force_login(anna)

    response = client.post(reverse("set_language"), {"language": "fr", "next": "/"})

    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    anna.refresh_from_db()
    assert anna.preferred_language == "fr"
    # The account now decides, whatever this or another browser asks for.
    client.cookies.pop(settings.LANGUAGE_COOKIE_NAME)
    assert "Bonjour Anna Novak" in client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_switching_back_to_english_saves_that_too(client, anna):
    anna.preferred_language = "fr"
    anna.save()
    client.force_login(anna)

    client.post(reverse("set_language"), {"language": "en", "next": "/"})

    anna.refresh_from_db()
    assert anna.preferred_language == "en"
    assert "Hello, Anna Novak" in client.get("/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()


def test_a_language_alfred_does_not_offer_is_not_saved(client, anna):
    anna.preferred_language = "fr"
    anna.save()
    client.force_login(anna)

    client.post(reverse("set_language"), {"language": "de", "next": "/"})

    anna.refresh_from_db()
    assert anna.preferred_language == "fr"


def test_a_get_to_set_language_changes_nothing(client, anna):
    client.force_login(anna)

    client.get(reverse("set_language"), {"language": "fr", "next": "/"})

    anna.refresh_from_db()
    assert anna.preferred_language == ""


def test_anonymous_people_choose_with_the_cookie_only(client, db):
    response = client.post(reverse("set_language"), {"language": "fr", "next": reverse("login")})

    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    assert "Se connecter à Alfred" in client.get(reverse("login")).content.decode()


# --- Labels from the models -----------------------------------------------------------------------


def test_the_role_of_a_membership_shows_in_french_on_the_home_page(client, anna):
    MembershipFactory(user=anna, organization=OrganizationFactory(name="Cabinet du Port"), role="practitioner")
    anna.preferred_language = "fr"
    anna.save()
    client.force_login(anna)

    page = client.get(reverse("home")).content.decode()

    assert "Vos cabinets" in page
    assert "Cabinet du Port — Praticien(ne)" in page


@pytest.mark.parametrize(
    ("label", "french"),
    [
        (Membership.Role.PRACTITIONER.label, "Praticien(ne)"),
        (Membership.Role.SECRETARY.label, "Secrétaire"),
        (Membership.Role.ASSISTANT.label, "Assistant(e)"),
        (Membership.Role.ADMIN.label, "Administrateur(trice) du cabinet"),
        (User.PlatformRole.MEMBER.label, "Membre du cabinet"),
        (User.PlatformRole.SUPPORT.label, "Équipe support"),
        (User.PlatformRole.COMPLIANCE.label, "Responsable conformité"),
        (AccessLevel.VIEW.label, "Consulter"),
        (AccessLevel.BOOK.label, "Réserver"),
        (AccessLevel.MANAGE.label, "Gérer"),
    ],
)
def test_model_labels_are_translated(label, french):
    with translation.override("fr"):
        assert str(label) == french


# --- The catalogue --------------------------------------------------------------------------------


def po_entries(path: Path) -> list[dict]:
    """The entries of a .po file, the header first (its msgid is ""), obsolete (`#~`) entries left out:
    dicts of flags, msgctxt, msgid, msgid_plural and msgstr (a list: one string, or one per plural form)."""
    entries = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        entry = {"flags": set(), "msgctxt": None, "msgid": "", "msgid_plural": None, "msgstr": []}
        field = None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"].update(flag.strip() for flag in line[2:].split(","))
            elif match := PO_KEYWORD.match(line):
                keyword, text = match.groups()
                field = "msgstr" if keyword.startswith("msgstr") else keyword
                if field == "msgstr":
                    entry["msgstr"].append("")
                _po_append(entry, field, text)
            elif line.startswith('"') and field:  # a continuation of the string above
                _po_append(entry, field, line[1:-1])
        if entry["msgstr"]:  # obsolete entries are all comments
            entries.append(entry)
    return entries


def _po_append(entry: dict, field: str, text: str) -> None:
    text = PO_ESCAPE.sub(lambda match: {"n": "\n", "t": "\t"}.get(match[1], match[1]), text)
    if field == "msgstr":
        entry["msgstr"][-1] += text
    else:
        entry[field] = (entry[field] or "") + text


def test_every_french_message_is_translated():
    entries = po_entries(FR_MESSAGES / "django.po")

    assert len(entries) > 20  # the parser found the catalogue
    missing = [entry["msgid"] for entry in entries if not all(entry["msgstr"])]
    # A fuzzy entry is left out of the .mo by msgfmt: on the page it would silently stay in English.
    fuzzy = [entry["msgid"] or "(the header)" for entry in entries if "fuzzy" in entry["flags"]]
    assert missing == [], "translate these in locale/fr/LC_MESSAGES/django.po, then `make messages`"
    assert fuzzy == [], "check these translations and remove their `#, fuzzy` flag, then `make messages`"


def test_the_compiled_catalogue_matches_the_po_file():
    # Django reads the .mo only: a .po edited without `make messages` would change nothing on the pages.
    with open(FR_MESSAGES / "django.mo", "rb") as mo:
        compiled = gettext.GNUTranslations(mo)

    for entry in po_entries(FR_MESSAGES / "django.po"):
        if not entry["msgid"]:
            continue  # the header: metadata, not a message
        if entry["msgid_plural"]:
            assert compiled.ngettext(entry["msgid"], entry["msgid_plural"], 1) == entry["msgstr"][0]
            assert compiled.ngettext(entry["msgid"], entry["msgid_plural"], 2) == entry["msgstr"][1]
        elif entry["msgctxt"] is not None:
            assert compiled.pgettext(entry["msgctxt"], entry["msgid"]) == entry["msgstr"][0]
        else:
            assert compiled.gettext(entry["msgid"]) == entry["msgstr"][0]
