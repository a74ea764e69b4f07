"""Service JWTs (who is calling) and user access tokens (on whose authority).

Every verifier names its algorithms explicitly, requires its claims, refuses key-carrying headers
(`jku`, `x5u`, `x5c`, `jwk`) and `crit`, and never mixes HMAC with asymmetric algorithms.
A refusal raises `TokenRefused` with a stable reason code that ends up in the security events.
"""

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.conf import settings
from django.contrib.auth import get_user_model

from governance.keys import service_public_keys, signing_key

FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "x5c", "jwk", "crit"})
SERVICE_ALGORITHM = "EdDSA"
LOCAL_ALGORITHM = "EdDSA"
ACCESS_TOKEN_TYPE = "at+jwt"  # RFC 9068 header `typ` of access tokens


class TokenRefused(Exception):
    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ServiceCaller:
    """The verified identity of a calling service (request.auth on token-authenticated API calls)."""

    service: str
    jti: str


def checked_header(raw: str, algorithm: str) -> dict:
    try:
        header = jwt.get_unverified_header(raw)
    except jwt.InvalidTokenError as exc:
        raise TokenRefused("malformed", str(exc)) from exc
    if FORBIDDEN_HEADERS & header.keys():
        raise TokenRefused("forbidden_header", ",".join(sorted(FORBIDDEN_HEADERS & header.keys())))
    if header.get("alg") != algorithm:
        raise TokenRefused("bad_algorithm", str(header.get("alg")))
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise TokenRefused("no_kid")
    return header


def decode_verified(raw: str, key, *, algorithm: str, audience: str, issuer: str, required: list[str]) -> dict:
    try:
        # A key of another type than the algorithm's (an EC key named by an RS256 token) is a refusal, not a 500.
        key = jwt.get_algorithm_by_name(algorithm).prepare_key(key)
    except (jwt.InvalidKeyError, TypeError) as exc:
        raise TokenRefused("bad_key", str(exc)) from exc
    try:
        return jwt.decode(
            raw,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=settings.JWT_LEEWAY,
            options={"require": required, "verify_signature": True},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenRefused("expired") from exc
    except jwt.ImmatureSignatureError as exc:
        raise TokenRefused("not_yet_valid", str(exc)) from exc
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRefused("missing_claim", exc.claim) from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenRefused("bad_audience", str(exc)) from exc
    except jwt.InvalidIssuerError as exc:
        raise TokenRefused("bad_issuer", str(exc)) from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenRefused("bad_signature") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenRefused("invalid", str(exc)) from exc


def _check_lifetime(claims: dict, maximum: timedelta) -> None:
    # PyJWT accepts numeric strings ("1700000000") for exp and iat: a lifetime needs numbers.
    if (
        not isinstance(claims["iat"], int | float)
        or not isinstance(claims["exp"], int | float)
        or claims["exp"] - claims["iat"] > maximum.total_seconds()
    ):
        raise TokenRefused("lifetime_too_long")


# --- Service JWTs ------------------------------------------------------------------------------------


def mint_service_token(*, lifetime: timedelta = timedelta(minutes=2)) -> str:
    """A service JWT for this deployment's own service identity (SERVICE_NAME), signed with its key."""
    if not settings.SERVICE_PRIVATE_KEY:
        raise RuntimeError("SERVICE_PRIVATE_KEY (or SERVICE_PRIVATE_KEY_FILE) is not set")
    key, kid = signing_key(settings.SERVICE_PRIVATE_KEY)
    now = int(time.time())
    claims = {
        "iss": settings.SERVICE_NAME,
        "sub": settings.SERVICE_NAME,
        "aud": settings.SERVICE_JWT_AUDIENCE,
        "iat": now,
        "exp": now + int(lifetime.total_seconds()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm=SERVICE_ALGORITHM, headers={"kid": kid})


def verify_service_token(raw: str) -> ServiceCaller:
    """Verify a service JWT against the public keys of the service it names in `iss`."""
    header = checked_header(raw, SERVICE_ALGORITHM)
    try:
        service = jwt.decode(raw, options={"verify_signature": False}).get("iss")
    except jwt.InvalidTokenError as exc:
        raise TokenRefused("malformed", str(exc)) from exc
    keys = service_public_keys(settings.KEYS_DIR).get(service) if isinstance(service, str) else None
    if not keys:
        raise TokenRefused("unknown_service", str(service)[:100])
    key = keys.get(header["kid"])
    if key is None:
        raise TokenRefused("unknown_kid", header["kid"][:100])
    claims = decode_verified(
        raw,
        key,
        algorithm=SERVICE_ALGORITHM,
        audience=settings.SERVICE_JWT_AUDIENCE,
        issuer=service,
        required=["iss", "sub", "aud", "iat", "exp", "jti"],
    )
    if claims["sub"] != service:
        raise TokenRefused("bad_subject")
    _check_lifetime(claims, settings.SERVICE_JWT_MAX_LIFETIME)
    return ServiceCaller(service=service, jti=str(claims["jti"]))


# --- User access tokens --------------------------------------------------------------------------------


def issue_local_user_token(user, *, lifetime: timedelta | None = None) -> str:
    """A short-lived access token for `user`, signed by Alfred's local issuer (local login mode)."""
    key, kid = signing_key(settings.LOCAL_ISSUER_PRIVATE_KEY)
    now = int(time.time())
    lifetime = lifetime or settings.LOCAL_TOKEN_LIFETIME
    claims = {
        "iss": settings.LOCAL_TOKEN_ISSUER,
        "sub": str(user.pk),
        "aud": settings.LOCAL_TOKEN_AUDIENCE,
        "iat": now,
        "exp": now + int(lifetime.total_seconds()),
        "jti": uuid.uuid4().hex,
    }
    headers = {"kid": kid, "typ": ACCESS_TOKEN_TYPE}
    return jwt.encode(claims, key, algorithm=LOCAL_ALGORITHM, headers=headers)


def _verify_local_user_token(raw: str):
    header = checked_header(raw, LOCAL_ALGORITHM)
    if header.get("typ") != ACCESS_TOKEN_TYPE:
        raise TokenRefused("not_an_access_token")
    private_key, kid = signing_key(settings.LOCAL_ISSUER_PRIVATE_KEY)
    public_key = private_key.public_key()
    if header["kid"] != kid:
        raise TokenRefused("unknown_kid", header["kid"][:100])
    claims = decode_verified(
        raw,
        public_key,
        algorithm=LOCAL_ALGORITHM,
        audience=settings.LOCAL_TOKEN_AUDIENCE,
        issuer=settings.LOCAL_TOKEN_ISSUER,
        required=["iss", "sub", "aud", "iat", "exp", "jti"],
    )
    _check_lifetime(claims, settings.LOCAL_TOKEN_LIFETIME + settings.JWT_LEEWAY)
    user = get_user_model().objects.filter(pk=_int_or_none(claims["sub"]), is_active=True).first()
    if user is None:
        raise TokenRefused("unknown_user")
    return user


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def verify_user_token(raw: str):
    """The active user a user access token speaks for: the IdP's access token in OIDC mode, else a local one."""
    if settings.OIDC_ENABLED:
        from governance.oidc_tokens import verify_oidc_access_token

        return verify_oidc_access_token(raw)
    return _verify_local_user_token(raw)
