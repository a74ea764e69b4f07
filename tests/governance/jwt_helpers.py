"""Minting tokens for the tests, honest and hostile: service JWTs, local user tokens, IdP tokens, JWKS.

Everything is signed for real with PyJWT's algorithms and cryptography keys, but the JWS is assembled
here so a test controls every header and claim; `forge` builds what no key signs (`alg: none`, HS256
keyed with a public key).
"""

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from governance.keys import key_id

DROP = object()  # a claim or header value that means "leave this one out"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _apply(base: dict, overrides: dict) -> dict:
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not DROP}


def _jws(header: dict | list, payload: bytes, sign) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(payload)}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def forge(header: dict | list, claims: dict, *, hmac_key: bytes | None = None) -> str:
    """A compact JWS PyJWT would refuse to build: unsigned (`alg: none`) or HMAC-SHA256 keyed with any bytes."""
    if hmac_key is None:
        return _jws(header, json.dumps(claims).encode(), lambda _: b"")
    return _jws(header, json.dumps(claims).encode(), lambda data: hmac.new(hmac_key, data, hashlib.sha256).digest())


@dataclass
class SigningKey:
    """A private key that signs tokens. `kid` is its RFC 7638 thumbprint unless given (EC keys)."""

    private: object
    algorithm: str
    given_kid: str = ""

    @property
    def public(self):
        return self.private.public_key()

    @property
    def kid(self) -> str:
        return self.given_kid or key_id(self.public)

    def sign(self, claims, **headers) -> str:
        """Sign any payload (a dict, or raw JSON bytes) with exactly the header asked for: `alg`, `kid`
        and `headers` (no `typ` unless given; DROP removes one). PyJWT's own encoder would refuse some."""
        header = _apply({"alg": self.algorithm, "kid": self.kid}, headers)
        payload = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        return _jws(header, payload, lambda data: algorithm.sign(data, self.private))


def ed25519_key() -> SigningKey:
    return SigningKey(ed25519.Ed25519PrivateKey.generate(), "EdDSA")


def rsa_key() -> SigningKey:
    return SigningKey(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")


def ec_key() -> SigningKey:
    return SigningKey(ec.generate_private_key(ec.SECP256R1()), "ES256", given_kid=f"ec-{uuid.uuid4().hex[:8]}")


def now() -> int:
    return int(time.time())


def service_claims(service: str = "agents", **overrides) -> dict:
    issued = now()
    base = {
        "iss": service,
        "sub": service,
        "aud": "alfred-platform-api",
        "iat": issued,
        "exp": issued + 120,
        "jti": uuid.uuid4().hex,
    }
    return _apply(base, overrides)


def local_user_claims(user_id, *, issuer: str, **overrides) -> dict:
    issued = now()
    base = {
        "iss": issuer,
        "sub": str(user_id),
        "aud": "alfred-api",
        "iat": issued,
        "exp": issued + 300,
        "jti": uuid.uuid4().hex,
    }
    return _apply(base, overrides)


def idp_access_claims(subject: str, *, issuer: str, **overrides) -> dict:
    """A Keycloak-shaped access token: `typ: Bearer`, the API among the audiences, the client as `azp`."""
    issued = now()
    base = {
        "iss": issuer,
        "sub": subject,
        "aud": ["alfred-api", "account"],
        "azp": "alfred",
        "typ": "Bearer",
        "iat": issued,
        "exp": issued + 300,
        "jti": uuid.uuid4().hex,
        "scope": "openid email profile",
    }
    return _apply(base, overrides)


def idp_id_token_claims(subject: str, *, issuer: str, **overrides) -> dict:
    """A Keycloak-shaped ID token: `typ: ID`, audience the client, a nonce."""
    issued = now()
    base = {
        "iss": issuer,
        "sub": subject,
        "aud": "alfred",
        "azp": "alfred",
        "typ": "ID",
        "iat": issued,
        "exp": issued + 300,
        "auth_time": issued,
        "nonce": uuid.uuid4().hex,
        "email": "anna@example.test",
    }
    return _apply(base, overrides)


def public_jwk(key: SigningKey, **members) -> dict:
    """The public JWK of `key` as an IdP publishes it (kid, use sig, alg), with optional overrides."""
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[key.algorithm].to_jwk(key.public))
    return _apply({**jwk, "kid": key.kid, "use": "sig", "alg": key.algorithm}, members)


@dataclass
class JWKSState:
    """What the test JWKS server answers, and how often it was asked."""

    keys: list[dict] = field(default_factory=list)
    status: int = 200
    body: bytes | None = None  # when set, served as is instead of the key set
    delay: float = 0.0  # seconds to wait before answering (a slow IdP)
    requests: int = 0

    def payload(self) -> bytes:
        return self.body if self.body is not None else json.dumps({"keys": self.keys}).encode()
