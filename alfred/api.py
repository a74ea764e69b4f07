"""API plumbing shared by every app: pagination and the `{"code", "detail"}` error format."""

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from governance.authentication import calling_service, request_origin
from governance.errors import AlfredError, NotAllowed
from governance.services import security_event_record


class Pagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


def exception_handler(exc, context):
    """Every error leaves as JSON `{"code", "detail"}` (plus `fields` for validation errors)."""
    request = context.get("request")
    if isinstance(exc, AlfredError):
        if isinstance(exc, NotAllowed) and request is not None:
            security_event_record(
                kind="access_denied",
                reason=exc.code,
                detail=exc.detail,
                service=calling_service(request),
                user=request.user,
                **request_origin(request),
            )
        return Response({"code": exc.code, "detail": exc.detail}, status=exc.status)
    if isinstance(exc, exceptions.NotAuthenticated) and request is not None:
        security_event_record(kind="unauthenticated", reason="no_credentials", **request_origin(request))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a bug, not a refusal: let Django's 500 handling and logging take it
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "detail": "The request is not valid.", "fields": exc.detail}
    else:
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        response.data = {"code": codes if isinstance(codes, str) else "error", "detail": str(exc.detail)}
    if response.status_code == status.HTTP_401_UNAUTHORIZED and "WWW-Authenticate" not in response:
        response["WWW-Authenticate"] = 'Bearer realm="alfred-platform-api"'
    return response
