"""Access tokens of the OIDC provider (Keycloak), verified against its JWKS.

The JWKS is cached by `kid` in each process; an unknown `kid` triggers at most one refetch per
OIDC_JWKS_REFRESH_INTERVAL seconds (so a flood of forged kids cannot hammer the IdP), with a short
HTTP timeout. It is a cache: the IdP stays the truth, and a rotated key is picked up on first use.
"""

import logging
import threading
import time

import jwt
import requests
from django.conf import settings
from django.contrib.auth import get_user_model

from governance.tokens import ACCESS_TOKEN_TYPE, TokenRefused, checked_header, decode_verified

logger = logging.getLogger(__name__)


class JWKSCache:
    def __init__(self, url: str, *, timeout: float, refresh_interval: float):
        self.url = url
        self.timeout = timeout
        self.refresh_interval = refresh_interval
        self._keys: dict[str, object] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key(self, kid: str):
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            if kid not in self._keys and time.monotonic() - self._fetched_at >= self.refresh_interval:
                self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise TokenRefused("unknown_kid", kid[:100])
        return key

    def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            response = requests.get(self.url, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict):
                raise ValueError("the JWKS is not a JSON object")
            jwk_set = jwt.PyJWKSet.from_dict(document)
        except (requests.RequestException, ValueError, jwt.PyJWKSetError) as exc:
            # Keep the keys we had: an IdP hiccup must not log everybody out.
            logger.warning("JWKS refresh failed", extra={"url": self.url, "error": str(exc)})
            return
        self._keys = {jwk.key_id: jwk.key for jwk in jwk_set.keys if jwk.key_id and jwk.public_key_use != "enc"}


_caches: dict[str, JWKSCache] = {}


def jwks_cache() -> JWKSCache:
    url = settings.OIDC_OP_JWKS_ENDPOINT
    cache = _caches.get(url)
    if cache is None:
        cache = _caches[url] = JWKSCache(
            url, timeout=settings.OIDC_TIMEOUT, refresh_interval=settings.OIDC_JWKS_REFRESH_INTERVAL
        )
    return cache


def verify_oidc_access_token(raw: str):
    """The active user an IdP access token speaks for, matched by (issuer, subject).

    ID tokens are refused: Keycloak marks them `typ: ID` (access tokens `typ: Bearer`), RFC 9068
    providers mark access tokens with the header `typ: at+jwt`; and an ID token's audience is the
    client, not the API.
    """
    header = checked_header(raw, settings.OIDC_RP_SIGN_ALGO)
    key = jwks_cache().key(header["kid"])
    claims = decode_verified(
        raw,
        key,
        algorithm=settings.OIDC_RP_SIGN_ALGO,
        audience=settings.OIDC_API_AUDIENCE,
        issuer=settings.OIDC_OP_ISSUER,
        required=["iss", "sub", "aud", "iat", "exp"],
    )
    if header.get("typ") != ACCESS_TOKEN_TYPE and claims.get("typ") != "Bearer":
        raise TokenRefused("not_an_access_token", str(claims.get("typ") or header.get("typ")))
    user = (
        get_user_model()
        .objects.filter(oidc_issuer=claims["iss"], oidc_subject=str(claims["sub"]), is_active=True)
        .first()
    )
    if user is None:
        raise TokenRefused("unknown_user")
    return user
