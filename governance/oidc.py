"""Login through the organisation's OIDC provider (Keycloak), on top of mozilla-django-oidc.

mozilla-django-oidc checks an ID token's signature and nonce only: not its `iss`, `aud` or `azp`. It
matches people by e-mail, and fetches the JWKS on every login without a cache. This backend verifies
the ID token like every other token in Alfred (governance.tokens, keys from the shared JWKS cache),
matches people by (issuer, subject) only, and takes the platform role from the IdP on every login:
the IdP is the truth for who someone is and what they may do.
"""

import hashlib
import logging
import re
from functools import wraps
from urllib.parse import urlencode

import requests
from django.conf import settings
from django.core.exceptions import SuspiciousOperation
from django.db import IntegrityError, transaction
from django.http import Http404
from django.shortcuts import resolve_url
from django.urls import URLPattern
from mozilla_django_oidc import urls as mozilla_oidc_urls
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from governance.authentication import request_origin
from governance.models import User
from governance.oidc_tokens import jwks_cache
from governance.services import security_event_record, user_platform_groups_sync
from governance.tokens import ACCESS_TOKEN_TYPE, TokenRefused, checked_header, decode_verified

logger = logging.getLogger(__name__)

ID_TOKEN_REQUIRED_CLAIMS = ["iss", "sub", "aud", "iat", "exp"]
USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")  # what Django's username validator refuses


class OIDCLoginRefused(SuspiciousOperation):
    """An OIDC login refused for a stable reason (recorded as a security event)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def verified_id_token(raw) -> dict:
    """The claims of an ID token issued by our IdP for our client; TokenRefused otherwise."""
    if not isinstance(raw, str) or not raw:
        raise TokenRefused("no_id_token")
    header = checked_header(raw, settings.OIDC_RP_SIGN_ALGO)
    if header.get("typ") == ACCESS_TOKEN_TYPE:
        raise TokenRefused("not_an_id_token", header["typ"])
    claims = decode_verified(
        raw,
        jwks_cache().key(header["kid"]),
        algorithm=settings.OIDC_RP_SIGN_ALGO,
        audience=settings.OIDC_RP_CLIENT_ID,
        issuer=settings.OIDC_OP_ISSUER,
        required=ID_TOKEN_REQUIRED_CLAIMS,
    )
    if claims.get("typ") not in (None, "ID"):  # Keycloak marks its access tokens `typ: Bearer`
        raise TokenRefused("not_an_id_token", str(claims["typ"]))
    _check_authorized_party(claims)
    return claims


def _check_authorized_party(claims: dict) -> None:
    # OIDC Core 3.1.3.7: with several audiences `azp` must be there, and when there it must be us.
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    azp = claims.get("azp")
    if azp is None and len(audiences) > 1:
        raise TokenRefused("missing_azp")
    if azp is not None and azp != settings.OIDC_RP_CLIENT_ID:
        raise TokenRefused("bad_azp", str(azp)[:100])


def roles_in(claims: dict, path: str) -> frozenset[str]:
    """The role names found at a dotted claim path such as "realm_access.roles"."""
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return frozenset()
        value = value.get(part)
    if isinstance(value, str):
        return frozenset([value])
    if isinstance(value, list | tuple):
        return frozenset(role for role in value if isinstance(role, str))
    return frozenset()


def platform_role_for(claims: dict) -> str:
    """support, compliance or member, from the roles the IdP grants (support wins if both)."""
    roles = roles_in(claims, settings.OIDC_ROLES_CLAIM)
    if settings.OIDC_SUPPORT_ROLE in roles:
        return User.PlatformRole.SUPPORT
    if settings.OIDC_COMPLIANCE_ROLE in roles:
        return User.PlatformRole.COMPLIANCE
    return User.PlatformRole.MEMBER


def _claim_text(claims: dict, name: str, max_length: int) -> str | None:
    value = claims.get(name)
    return str(value)[:max_length] if value is not None else None


class AlfredOIDCBackend(OIDCAuthenticationBackend):
    """Authorization-code login with the IdP: verified ID token, (iss, sub) identity, IdP roles.

    Userinfo is expected as JSON (Keycloak's default): a signed userinfo response would go through
    `verify_token` and be refused for lacking `exp`.
    """

    def authenticate(self, request, **kwargs):
        try:
            return super().authenticate(request, **kwargs)
        except OIDCLoginRefused:
            return None  # recorded where it was refused; the callback view sends the person back
        except requests.RequestException as exc:
            # The IdP refused the code (replayed, expired) or did not answer: a failed login, not a 500.
            logger.warning("OIDC token exchange failed", extra={"error": str(exc)[:500]})
            return None

    def verify_token(self, token, **kwargs):
        try:
            claims = verified_id_token(token)
        except TokenRefused as exc:
            raise self._refusal(exc.reason, exc.detail) from exc
        if self.get_settings("OIDC_USE_NONCE", True) and claims.get("nonce") != kwargs.get("nonce"):
            raise self._refusal("bad_nonce")
        return claims

    def get_userinfo(self, access_token, id_token, payload):
        """Userinfo merged over the ID token's claims; the identity stays the ID token's."""
        userinfo = super().get_userinfo(access_token, id_token, payload)
        if str(userinfo.get("sub")) != str(payload["sub"]):  # OIDC Core 5.3.2: else a substituted response
            raise self._refusal("userinfo_subject_mismatch")
        return {**payload, **userinfo, "iss": payload["iss"], "sub": payload["sub"]}

    def verify_claims(self, claims) -> bool:
        # Identity is (iss, sub): an e-mail is welcome but not required.
        return bool(claims.get("iss")) and bool(claims.get("sub"))

    def filter_users_by_claims(self, claims):
        return self.UserModel.objects.filter(oidc_issuer=claims["iss"], oidc_subject=str(claims["sub"]))

    def create_user(self, claims):
        user = self.UserModel(
            username=self._free_username(claims),
            oidc_issuer=claims["iss"],
            oidc_subject=str(claims["sub"]),
        )
        user.set_unusable_password()  # people from the IdP never log in with a local password
        self._apply_claims(user, claims)
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            # The same person's first login in two tabs at once: the other request created the account.
            existing = self.filter_users_by_claims(claims).first()
            if existing is None:
                raise
            return self.update_user(existing, claims)
        user_platform_groups_sync(user=user)
        return user

    def update_user(self, user, claims):
        changed = self._apply_claims(user, claims)
        if changed:
            user.save(update_fields=changed)
        if "platform_role" in changed:
            user_platform_groups_sync(user=user)
        return user

    def get_user(self, user_id):
        # The library's get_user skips the is_active check ModelBackend makes: a deactivated person
        # would stay logged in until the session expires.
        user = super().get_user(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None

    def _apply_claims(self, user, claims: dict) -> list[str]:
        """Copy names, e-mail and role from the claims; return the fields that changed."""
        role = platform_role_for(claims)
        values = {
            "first_name": _claim_text(claims, "given_name", 150),
            "last_name": _claim_text(claims, "family_name", 150),
            "email": _claim_text(claims, "email", 254),
            "platform_role": role,
            "is_staff": role == User.PlatformRole.SUPPORT or user.is_superuser,
        }
        changed = []
        for field, value in values.items():
            if value is not None and getattr(user, field) != value:  # an absent claim keeps what we had
                setattr(user, field, value)
                changed.append(field)
        return changed

    def _free_username(self, claims: dict) -> str:
        """The subject as a username, made safe; with a digest of (iss, sub) if that name is taken."""
        subject = str(claims["sub"])
        base = USERNAME_UNSAFE.sub("-", subject)[:100] or "oidc-user"
        digest = hashlib.sha256(f"{claims['iss']}\n{subject}".encode()).hexdigest()[:12]
        for candidate in (base, f"{base}-{digest}"):
            if not self.UserModel.objects.filter(username=candidate).exists():
                return candidate
        raise self._refusal("username_taken", base)

    def _refusal(self, reason: str, detail: str = "") -> OIDCLoginRefused:
        """Record the refusal as a security event; the caller raises what this returns."""
        request = getattr(self, "request", None)
        origin = request_origin(request) if request is not None else {}
        security_event_record(kind="oidc_login_refused", reason=reason, detail=detail, **origin)
        return OIDCLoginRefused(reason, detail)


def provider_logout_url(request) -> str:
    """Where /oidc/logout/ sends the person: the IdP's end-session endpoint (RP-initiated logout),
    which comes back to our login page. Without an endpoint, straight to the login page.

    mozilla-django-oidc calls this (OIDC_OP_LOGOUT_URL_METHOD) before it ends the Django session,
    so the ID token is still there to serve as `id_token_hint`, which Keycloak wants.
    """
    after_logout = request.build_absolute_uri(resolve_url(settings.LOGOUT_REDIRECT_URL))
    if not settings.OIDC_OP_LOGOUT_ENDPOINT:
        return after_logout
    params = {"client_id": settings.OIDC_RP_CLIENT_ID, "post_logout_redirect_uri": after_logout}
    id_token = request.session.get("oidc_id_token")
    if id_token:
        params["id_token_hint"] = id_token
    return f"{settings.OIDC_OP_LOGOUT_ENDPOINT}?{urlencode(params)}"


def oidc_only(view):
    """Answer 404 unless OIDC login is on, checked on each request (so settings can switch it)."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not settings.OIDC_ENABLED:
            raise Http404("OIDC login is not enabled")
        return view(request, *args, **kwargs)

    return guarded


def oidc_urlpatterns() -> list[URLPattern]:
    """mozilla-django-oidc's routes (same names), each behind `oidc_only`."""
    return [
        URLPattern(pattern.pattern, oidc_only(pattern.callback), pattern.default_args, pattern.name)
        for pattern in mozilla_oidc_urls.urlpatterns
    ]
