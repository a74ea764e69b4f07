"""OIDC login: the backend's refusals against tokens we sign ourselves, and whole logins in Chromium
through a real OpenID Connect provider (node-oidc-provider, tests/oidc_provider/server.mjs)."""

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from playwright.sync_api import expect

from governance.models import SecurityEvent, User
from governance.oidc import AlfredOIDCBackend, platform_role_for
from tests.browser import browser, page  # noqa: F401
from tests.factories import UserFactory

PROVIDER_DIR = Path(__file__).resolve().parent.parent / "oidc_provider"
CLIENT_ID = "alfred"
CLIENT_SECRET = "alfred-test-secret"
BACKEND = "governance.oidc.AlfredOIDCBackend"


def oidc_settings(settings, issuer: str, *, jwks: str, token: str, userinfo: str, logout: str = "") -> None:
    settings.OIDC_ENABLED = True
    settings.OIDC_OP_ISSUER = issuer
    settings.OIDC_RP_CLIENT_ID = CLIENT_ID
    settings.OIDC_RP_CLIENT_SECRET = CLIENT_SECRET
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = f"{issuer}/auth"
    settings.OIDC_OP_TOKEN_ENDPOINT = token
    settings.OIDC_OP_USER_ENDPOINT = userinfo
    settings.OIDC_OP_JWKS_ENDPOINT = jwks
    settings.OIDC_OP_LOGOUT_ENDPOINT = logout
    settings.AUTHENTICATION_BACKENDS = [BACKEND, "django.contrib.auth.backends.ModelBackend"]


# --- The backend against a scripted provider ------------------------------------------------------


class ScriptedProvider(ThreadingHTTPServer):
    """Serves a JWKS, and answers the token and userinfo endpoints with whatever the test scripted."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.issuer = f"http://127.0.0.1:{self.server_address[1]}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "scripted-key-1"
        public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.jwks = {"keys": [{**public_jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}
        self.id_token = ""
        self.userinfo: dict = {}
        self.subject = "subject-1"

    def id_token_claims(self, **overrides) -> dict:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": CLIENT_ID, "sub": self.subject, "iat": now, "exp": now + 300}
        claims["nonce"] = "expected-nonce"
        return {**claims, **overrides}

    def sign(self, claims: dict, *, key=None, kid=None, algorithm="RS256") -> str:
        return jwt.encode(claims, key or self.key, algorithm=algorithm, headers={"kid": kid or self.kid})


class ScriptedHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/jwks":
            self._json(self.server.jwks)
        elif self.path == "/userinfo":
            self._json(self.server.userinfo)
        else:
            self._json({"error": "not_found"}, 404)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/token":
            self._json({"error": "not_found"}, 404)
            return
        self._json({"access_token": "opaque-access-token", "token_type": "Bearer", "id_token": self.server.id_token})

    def _json(self, body, status=200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def scripted():
    server = ScriptedProvider()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def op(scripted, settings):
    issuer = scripted.issuer
    oidc_settings(settings, issuer, jwks=f"{issuer}/jwks", token=f"{issuer}/token", userinfo=f"{issuer}/userinfo")
    # A subject of its own per test: the test database may be shared with other runs.
    scripted.subject = f"subject-{uuid.uuid4().hex[:12]}"
    scripted.userinfo = {
        "sub": scripted.subject,
        "email": "alice@example.test",
        "given_name": "Alice",
        "family_name": "Martin",
        "realm_access": {"roles": ["alfred-compliance"]},
    }
    return scripted


def log_in_with(op, id_token: str, userinfo: dict | None = None):
    """Run the backend on a callback request whose code the scripted provider exchanges for `id_token`."""
    op.id_token = id_token
    if userinfo is not None:
        op.userinfo = userinfo
    request = RequestFactory().get("/oidc/callback/", {"code": "the-code", "state": "the-state"})
    request.session = SessionStore()
    return AlfredOIDCBackend().authenticate(request, nonce="expected-nonce", code_verifier=None)


def test_a_valid_id_token_logs_in_by_issuer_and_subject(op, db):
    user = log_in_with(op, op.sign(op.id_token_claims()))

    assert user is not None
    assert (user.oidc_issuer, user.oidc_subject, user.username) == (op.issuer, op.subject, op.subject)
    assert (user.first_name, user.last_name, user.email) == ("Alice", "Martin", "alice@example.test")
    assert user.platform_role == User.PlatformRole.COMPLIANCE
    assert not user.has_usable_password()


def test_the_same_subject_is_the_same_user_whatever_its_email(op, db):
    first = log_in_with(op, op.sign(op.id_token_claims()))
    again = log_in_with(op, op.sign(op.id_token_claims()), {**op.userinfo, "email": "alice@new.example.test"})

    assert again.pk == first.pk
    assert User.objects.get(pk=first.pk).email == "alice@new.example.test"


def test_the_same_email_with_another_subject_is_another_user(op, db):
    local = UserFactory(email="alice@example.test")
    first = log_in_with(op, op.sign(op.id_token_claims()))
    other_subject = f"{op.subject}-other"
    other = log_in_with(
        op, op.sign(op.id_token_claims(sub=other_subject)), {**op.userinfo, "sub": other_subject, "realm_access": {}}
    )

    assert len({local.pk, first.pk, other.pk}) == 3
    assert other.platform_role == User.PlatformRole.MEMBER
    assert User.objects.get(pk=local.pk).oidc_subject == ""


def test_a_subject_that_is_a_local_username_gets_another_username(op, db):
    UserFactory(username=op.subject)

    user = log_in_with(op, op.sign(op.id_token_claims()))

    assert user.username.startswith(f"{op.subject}-") and user.oidc_subject == op.subject


def test_roles_follow_the_idp_on_every_login(op, db):
    support = {**op.userinfo, "realm_access": {"roles": ["alfred-support"]}}
    user = log_in_with(op, op.sign(op.id_token_claims()), support)
    assert (user.platform_role, user.is_staff) == (User.PlatformRole.SUPPORT, True)

    user = log_in_with(op, op.sign(op.id_token_claims()), {**op.userinfo, "realm_access": {"roles": []}})

    assert (user.platform_role, user.is_staff) == (User.PlatformRole.MEMBER, False)


def other_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


REFUSALS = {
    "bad_issuer": lambda op: op.sign(op.id_token_claims(iss="https://evil.example.test")),
    "bad_audience": lambda op: op.sign(op.id_token_claims(aud="another-client")),
    "missing_azp": lambda op: op.sign(op.id_token_claims(aud=[CLIENT_ID, "another-client"])),
    "bad_azp": lambda op: op.sign(op.id_token_claims(azp="another-client")),
    "unknown_kid": lambda op: op.sign(op.id_token_claims(), key=other_key(), kid="unknown-key"),
    "bad_signature": lambda op: op.sign(op.id_token_claims(), key=other_key()),
    "bad_algorithm": lambda op: op.sign(op.id_token_claims(), key=CLIENT_SECRET * 2, algorithm="HS256"),
    "expired": lambda op: op.sign(op.id_token_claims(iat=int(time.time()) - 900, exp=int(time.time()) - 600)),
    "missing_claim": lambda op: op.sign({k: v for k, v in op.id_token_claims().items() if k != "exp"}),
    "bad_nonce": lambda op: op.sign(op.id_token_claims(nonce="another-nonce")),
    "not_an_id_token": lambda op: op.sign(op.id_token_claims(typ="Bearer")),
    "malformed": lambda op: "not-a-jwt",
}


@pytest.mark.parametrize("reason", REFUSALS)
def test_a_bad_id_token_logs_nobody_in(op, db, reason):
    last_event = SecurityEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0

    assert log_in_with(op, REFUSALS[reason](op)) is None

    assert not User.objects.filter(oidc_subject=op.subject).exists()
    events = SecurityEvent.objects.filter(id__gt=last_event, kind="oidc_login_refused")
    assert list(events.values_list("reason", flat=True)) == [reason]


def test_userinfo_about_another_subject_logs_nobody_in(op, db):
    assert log_in_with(op, op.sign(op.id_token_claims()), {**op.userinfo, "sub": "someone-else"}) is None

    assert not User.objects.filter(oidc_subject=op.subject).exists()
    assert SecurityEvent.objects.filter(reason="userinfo_subject_mismatch").exists()


def test_an_unreachable_provider_is_a_failed_login_not_an_error(op, db, settings):
    settings.OIDC_OP_TOKEN_ENDPOINT = f"{op.issuer}/nowhere"  # answers 404 to the code exchange

    assert log_in_with(op, op.sign(op.id_token_claims())) is None


def test_a_deactivated_user_loses_the_session(op, db):
    user = log_in_with(op, op.sign(op.id_token_claims()))
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert AlfredOIDCBackend().get_user(user.pk) is None


@pytest.mark.parametrize(
    ("claims", "role"),
    [
        ({"realm_access": {"roles": ["alfred-support", "x"]}}, "support"),
        ({"realm_access": {"roles": ["alfred-compliance"]}}, "compliance"),
        ({"realm_access": {"roles": ["alfred-compliance", "alfred-support"]}}, "support"),
        ({"realm_access": {"roles": ["offline_access"]}}, "member"),
        ({"realm_access": "alfred-support"}, "member"),
        ({}, "member"),
    ],
)
def test_platform_role_from_the_roles_claim(claims, role):
    assert platform_role_for(claims) == role


def test_roles_claim_path_and_role_names_come_from_settings(settings):
    settings.OIDC_ROLES_CLAIM = "resource_access.alfred.roles"
    settings.OIDC_SUPPORT_ROLE = "helpdesk"

    assert platform_role_for({"resource_access": {"alfred": {"roles": ["helpdesk"]}}}) == "support"
    assert platform_role_for({"realm_access": {"roles": ["alfred-support"]}}) == "member"


def test_oidc_routes_answer_404_when_oidc_is_off(client, db, settings):
    settings.OIDC_ENABLED = False

    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert "organisation account" not in client.get("/accounts/login/").content.decode()


def test_oidc_routes_answer_when_oidc_is_on(client, db, op):
    response = client.get("/oidc/authenticate/")

    assert response.status_code == 302
    assert response["Location"].startswith(f"{op.issuer}/auth?")
    assert "code_challenge=" in response["Location"]  # PKCE
    assert "organisation account" in client.get("/accounts/login/").content.decode()


def test_oidc_logout_ends_the_session_at_the_provider_too(client, db, op, settings):
    settings.OIDC_OP_LOGOUT_ENDPOINT = f"{op.issuer}/logout"
    client.force_login(UserFactory())
    session = client.session
    session["oidc_id_token"] = "the-id-token"
    session.save()

    response = client.post("/oidc/logout/")

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == f"{op.issuer}/logout"
    assert parse_qs(location.query) == {
        "client_id": [CLIENT_ID],
        "post_logout_redirect_uri": ["http://testserver/accounts/login/"],
        "id_token_hint": ["the-id-token"],
    }
    assert "_auth_user_id" not in client.session


def test_oidc_logout_without_a_provider_endpoint_goes_to_the_login_page(client, db, op):
    client.force_login(UserFactory())

    response = client.post("/oidc/logout/")

    assert response["Location"] == "http://testserver/accounts/login/"


# --- Whole logins through a real provider, in Chromium ----------------------------------------------


@dataclass
class RealProvider:
    issuer: str
    accounts_file: Path

    def set_accounts(self, accounts: dict) -> None:
        tmp = self.accounts_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(accounts))
        tmp.replace(self.accounts_file)  # atomic: the provider never reads half a file


def account(sub, email, given, family, roles=(), password="pw-at-the-provider"):
    return {
        "sub": sub,
        "email": email,
        "given_name": given,
        "family_name": family,
        "roles": list(roles),
        "password": password,
    }


ACCOUNTS = {
    "alice": account(str(uuid.uuid4()), "alice@example.test", "Alice", "Martin", ["offline_access"]),
    "sam": account(str(uuid.uuid4()), "sam@example.test", "Sam", "Support", ["alfred-support"]),
    "carla": account(str(uuid.uuid4()), "carla@example.test", "Carla", "Compliance", ["alfred-compliance"]),
}


def wait_for_ready(process, stdout: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in stdout.read_text().splitlines():
            if line.startswith("OIDC provider ready at "):
                return line.removeprefix("OIDC provider ready at ").strip()
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"the OIDC provider did not start:\n{stdout.read_text()}")


@pytest.fixture(scope="module")
def real_provider(live_server, tmp_path_factory):
    node = shutil.which("node")
    if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.skip("node or tests/oidc_provider/node_modules is missing: run `make test-deps`")
    workdir = tmp_path_factory.mktemp("oidc-provider")
    provider = RealProvider(issuer="", accounts_file=workdir / "accounts.json")
    provider.set_accounts(ACCOUNTS)
    env = {
        **os.environ,
        "OIDC_CLIENT_ID": CLIENT_ID,
        "OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_REDIRECT_URIS": f"{live_server.url}/oidc/callback/",
        "OIDC_POST_LOGOUT_REDIRECT_URIS": f"{live_server.url}/accounts/login/",
        "OIDC_ACCOUNTS_FILE": str(provider.accounts_file),
    }
    stdout = workdir / "stdout.log"
    with stdout.open("w") as out, (workdir / "stderr.log").open("w") as err:
        # Port 0: the provider picks a free port itself and announces its issuer, so no port race.
        process = subprocess.Popen([node, "server.mjs", "0"], cwd=PROVIDER_DIR, env=env, stdout=out, stderr=err)
    try:
        provider.issuer = wait_for_ready(process, stdout)
        yield provider
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def real_op(real_provider, settings, transactional_db):
    issuer = real_provider.issuer
    endpoints = {"jwks": "/jwks", "token": "/token", "userinfo": "/me", "logout": "/session/end"}
    oidc_settings(settings, issuer, **{name: f"{issuer}{path}" for name, path in endpoints.items()})
    real_provider.set_accounts(ACCOUNTS)
    return real_provider


def organisation_login(page, live_server, username: str, password: str = "pw-at-the-provider") -> None:  # noqa: F811
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_role("link", name="Log in with your organisation account").click()
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def expect_home_of(page, live_server, name: str) -> None:  # noqa: F811
    expect(page.get_by_role("heading", name=f"Hello, {name}")).to_be_visible()
    assert page.url == f"{live_server.url}/"


@pytest.mark.browser
@pytest.mark.slow
def test_organisation_login_creates_a_member(page, live_server, real_op):  # noqa: F811
    organisation_login(page, live_server, "alice")

    expect_home_of(page, live_server, "Alice Martin")
    user = User.objects.get(oidc_subject=ACCOUNTS["alice"]["sub"])
    assert user.oidc_issuer == real_op.issuer
    assert (user.platform_role, user.is_staff, user.email) == ("member", False, "alice@example.test")


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize(
    ("username", "role", "text"),
    [("sam", "support", "You are logged in as support staff."), ("carla", "compliance", "compliance officer")],
)
def test_organisation_login_takes_the_role_from_the_roles_claim(page, live_server, real_op, username, role, text):  # noqa: F811
    organisation_login(page, live_server, username)

    expect(page.get_by_text(text)).to_be_visible()
    user = User.objects.get(oidc_subject=ACCOUNTS[username]["sub"])
    assert user.platform_role == role
    assert user.is_staff == (role == "support")


@pytest.mark.browser
@pytest.mark.slow
def test_a_wrong_password_at_the_provider_logs_nobody_in(page, live_server, real_op):  # noqa: F811
    organisation_login(page, live_server, "alice", password="wrong")

    expect(page.get_by_role("alert")).to_contain_text("Invalid username or password")
    assert not User.objects.filter(oidc_subject=ACCOUNTS["alice"]["sub"]).exists()


@pytest.mark.browser
@pytest.mark.slow
def test_the_same_subject_comes_back_to_the_same_account_after_an_email_change(browser, live_server, real_op):  # noqa: F811
    for email in ("alice@example.test", "alice.martin@new.example.test"):
        real_op.set_accounts({**ACCOUNTS, "alice": {**ACCOUNTS["alice"], "email": email}})
        context = browser.new_context(locale="en-GB")  # a fresh browser: no session at Alfred or at the provider
        try:
            tab = context.new_page()
            organisation_login(tab, live_server, "alice")
            expect_home_of(tab, live_server, "Alice Martin")
        finally:
            context.close()

    user = User.objects.get(oidc_subject=ACCOUNTS["alice"]["sub"])
    assert user.email == "alice.martin@new.example.test"
    assert User.objects.filter(oidc_issuer=real_op.issuer).count() == 1


@pytest.mark.browser
@pytest.mark.slow
def test_the_same_email_under_another_subject_is_another_account(browser, live_server, real_op):  # noqa: F811
    local = UserFactory(username="alice", email="alice@example.test", first_name="Local", last_name="Alice")
    impostor = account(str(uuid.uuid4()), "alice@example.test", "Mallory", "Lookalike")
    real_op.set_accounts({**ACCOUNTS, "mallory": impostor})
    for username, name in (("alice", "Alice Martin"), ("mallory", "Mallory Lookalike")):
        context = browser.new_context(locale="en-GB")
        try:
            tab = context.new_page()
            organisation_login(tab, live_server, username)
            expect_home_of(tab, live_server, name)
        finally:
            context.close()

    alice = User.objects.get(oidc_subject=ACCOUNTS["alice"]["sub"])
    mallory = User.objects.get(oidc_subject=impostor["sub"])
    assert len({local.pk, alice.pk, mallory.pk}) == 3
    assert User.objects.get(pk=local.pk).oidc_subject == ""


@pytest.mark.browser
@pytest.mark.slow
def test_logout_through_the_provider_ends_both_sessions(page, live_server, real_op):  # noqa: F811
    organisation_login(page, live_server, "alice")
    expect_home_of(page, live_server, "Alice Martin")
    # An OIDC session's "Log out" posts to /oidc/logout/, which ends the provider's session too.
    expect(page.locator("form[action='/oidc/logout/']")).to_have_count(1)

    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Yes, sign me out").click()

    expect(page.get_by_role("heading", name="Log in to Alfred")).to_be_visible()
    # The provider forgot the person too: the organisation login asks for the password again.
    page.get_by_role("link", name="Log in with your organisation account").click()
    expect(page.get_by_role("heading", name="Test provider sign-in")).to_be_visible()
