"""Fixtures of the token tests: a temporary KEYS_DIR with registered service keys, a local issuer key,
and a real HTTP JWKS server standing in for the OIDC provider."""

import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from governance import oidc_tokens
from governance.keys import private_pem, public_pem
from tests.governance.jwt_helpers import JWKSState, SigningKey, ed25519_key, public_jwk, rsa_key

LOCAL_ISSUER = "http://testserver/local"
IDP_REALM_PATH = "/realms/alfred"


@dataclass
class KeyRing:
    """The service keys registered under KEYS_DIR/services/<service>/, and the local issuer's key."""

    keys_dir: Path
    agents: SigningKey
    local_issuer: SigningKey

    def register(self, service: str, key: SigningKey) -> Path:
        path = self.keys_dir / "services" / service / f"{key.kid}.pem"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(public_pem(key.private))
        return path

    def unregister(self, service: str, key: SigningKey) -> None:
        (self.keys_dir / "services" / service / f"{key.kid}.pem").unlink()


@pytest.fixture
def keys(settings, tmp_path) -> KeyRing:
    """Fresh keys for every test, and the token settings pinned to known values (whatever the env says)."""
    ring = KeyRing(keys_dir=tmp_path / "keys", agents=ed25519_key(), local_issuer=ed25519_key())
    ring.register("agents", ring.agents)
    settings.KEYS_DIR = ring.keys_dir
    settings.SERVICE_JWT_AUDIENCE = "alfred-platform-api"
    settings.SERVICE_JWT_MAX_LIFETIME = timedelta(minutes=5)
    settings.LOCAL_ISSUER_PRIVATE_KEY = private_pem(ring.local_issuer.private).decode()
    settings.LOCAL_TOKEN_ISSUER = LOCAL_ISSUER
    settings.LOCAL_TOKEN_AUDIENCE = "alfred-api"
    settings.LOCAL_TOKEN_LIFETIME = timedelta(seconds=300)
    settings.JWT_LEEWAY = timedelta(seconds=10)
    settings.OIDC_ENABLED = False
    # A new dict: tests add callers to it, and the original must not keep them.
    settings.API_ALLOWED_CALLERS = {"read": ["agents"], "calendar_access_write": ["agents"]}
    return ring


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture(scope="session")
def idp_keys() -> list[SigningKey]:
    """RSA keys are slow to generate: three for the whole session (current, next, and a stranger's)."""
    return [rsa_key() for _ in range(3)]


class _JWKSHandler(BaseHTTPRequestHandler):
    state: JWKSState  # set on the per-server subclass

    def do_GET(self):
        self.state.requests += 1
        time.sleep(self.state.delay)
        body = self.state.payload()
        try:
            self.send_response(self.state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the slow-IdP case)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def jwks_server(monkeypatch):
    """A real JWKS endpoint on 127.0.0.1 whose keys (and failures) the test controls; counts requests."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    state = JWKSState()
    handler = type("Handler", (_JWKSHandler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    oidc_tokens._caches.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    oidc_tokens._caches.clear()
    server.shutdown()
    server.server_close()
    thread.join()


@dataclass
class IdP:
    issuer: str
    jwks: JWKSState
    key: SigningKey  # the key the IdP signs with now


@pytest.fixture
def idp(settings, keys, jwks_server, idp_keys) -> IdP:
    """OIDC mode: user tokens are the IdP's RS256 access tokens, verified through the JWKS server."""
    base_url, state = jwks_server
    issuer = base_url + IDP_REALM_PATH
    state.keys = [public_jwk(idp_keys[0])]
    settings.OIDC_ENABLED = True
    settings.OIDC_OP_ISSUER = issuer
    settings.OIDC_OP_JWKS_ENDPOINT = issuer + "/protocol/openid-connect/certs"
    settings.OIDC_API_AUDIENCE = "alfred-api"
    settings.OIDC_RP_CLIENT_ID = "alfred"
    settings.OIDC_RP_SIGN_ALGO = "RS256"
    settings.OIDC_TIMEOUT = 1
    settings.OIDC_JWKS_REFRESH_INTERVAL = 60
    return IdP(issuer=issuer, jwks=state, key=idp_keys[0])


@pytest.fixture
def trail(practice):
    """A few audit records of each kind over the practice: an access granted through the agents, one revoked in
    a session, and a refused service token."""
    from governance.services import security_event_record
    from support.services.calendar_access import calendar_access_revoke, calendar_access_set

    calendar_access_set(
        actor=practice.anna, calendar=practice.novak_main, user=practice.tomas, level="book", via="agents"
    )
    calendar_access_revoke(actor=practice.ben, calendar=practice.okafor_main, user=practice.lea)
    security_event_record(kind="service_token_refused", reason="expired", method="PUT", path="/api/v1/calendars/1/")
    return practice
