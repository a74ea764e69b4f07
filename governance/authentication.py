"""API authentication: a browser session, or a service JWT together with the user's access token.

`Authorization: Bearer <service JWT>` says which service calls; `X-User-Token: <access token>` says on
whose authority. The API then acts as that user: the service never chooses whose authority is used.
Each refusal is recorded as a security event before the 401/403 goes out.
"""

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.authentication import SessionAuthentication as DRFSessionAuthentication
from rest_framework.permissions import BasePermission

from governance.correlation import adopt
from governance.services import security_event_record
from governance.tokens import ServiceCaller, TokenRefused, verify_service_token, verify_user_token

USER_TOKEN_HEADER = "HTTP_X_USER_TOKEN"
CORRELATION_HEADER = "HTTP_X_REQUEST_ID"
MAX_TOKEN_LENGTH = 8192  # a token larger than this is refused before any parsing


def request_origin(request) -> dict:
    return {
        "method": request.method,
        "path": request.get_full_path()[:500],
        "remote_addr": request.META.get("REMOTE_ADDR"),
    }


class ServiceTokenAuthentication(BaseAuthentication):
    """Both tokens, or neither (then the session authenticates). One alone is refused."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        user_token = request.META.get(USER_TOKEN_HEADER, "")
        if not parts and not user_token:
            return None
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            self._refuse(request, "service_token_refused", "malformed_authorization")
        service_raw = parts[1].decode("latin-1")
        try:
            caller = verify_service_token(self._bounded(service_raw))
        except TokenRefused as exc:
            self._refuse(request, "service_token_refused", exc.reason, exc.detail)
        if not user_token:
            self._refuse(request, "user_token_refused", "missing", service=caller.service)
        try:
            user = verify_user_token(self._bounded(user_token))
        except TokenRefused as exc:
            self._refuse(request, "user_token_refused", exc.reason, exc.detail, service=caller.service)
        adopt(request.META.get(CORRELATION_HEADER))  # a verified service continues its own unit of work
        return user, caller

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="alfred-platform-api"'

    @staticmethod
    def _bounded(raw: str) -> str:
        if len(raw) > MAX_TOKEN_LENGTH:
            raise TokenRefused("too_large")
        return raw

    @staticmethod
    def _refuse(request, kind: str, reason: str, detail: str = "", service: str = ""):
        security_event_record(kind=kind, reason=reason, detail=detail, service=service, **request_origin(request))
        raise exceptions.AuthenticationFailed(f"{kind.replace('_', ' ')}: {reason}", code=reason)


class SessionAuthentication(DRFSessionAuthentication):
    """DRF's session authentication (CSRF enforced on writes), with a CSRF failure recorded."""

    def enforce_csrf(self, request):
        try:
            super().enforce_csrf(request)
        except exceptions.PermissionDenied as exc:
            security_event_record(
                kind="csrf_refused",
                reason="csrf_failed",
                detail=str(exc.detail),
                user=request._request.user,  # the session's user: request.user would authenticate again
                **request_origin(request),
            )
            raise


def calling_service(request) -> str:
    """The verified calling service of a token-authenticated request; '' for a browser session."""
    return request.auth.service if isinstance(request.auth, ServiceCaller) else ""


def calling_token(request) -> str:
    """The `jti` of the verified service token of a token-authenticated request; '' for a browser session."""
    return request.auth.jti if isinstance(request.auth, ServiceCaller) else ""


class AllowedCaller(BasePermission):
    """A token-authenticated call must come from a service on the view's allowed-caller list.

    Views name their list with `caller_scope` ("read" unless set); the lists live in
    settings.API_ALLOWED_CALLERS. Browser sessions are people acting for themselves: not concerned.
    """

    def has_permission(self, request, view) -> bool:
        service = calling_service(request)
        if not service:
            return True
        scope = getattr(view, "caller_scope", "read")
        if service in settings.API_ALLOWED_CALLERS.get(scope, ()):
            return True
        security_event_record(
            kind="caller_not_allowed", reason=scope, service=service, user=request.user, **request_origin(request)
        )
        self.message = f"The service {service!r} may not call this endpoint."
        self.code = "caller_not_allowed"
        return False
