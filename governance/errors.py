"""Domain errors with a stable code. The API turns them into `{"code", "detail"}` with the HTTP status."""


class AlfredError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, detail: str, *, code: str | None = None):
        super().__init__(detail)
        self.detail = detail
        if code:
            self.code = code


class ValidationFailed(AlfredError):
    status = 400
    code = "invalid"


class NotAllowed(AlfredError):
    status = 403
    code = "not_allowed"


class NotFound(AlfredError):
    """Also raised for objects of another practice: their existence is never revealed."""

    status = 404
    code = "not_found"


class Conflict(AlfredError):
    status = 409
    code = "conflict"


class RateLimited(AlfredError):
    """Too many of something in a window; `retry_after` says in how many seconds it is allowed again."""

    status = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None):
        super().__init__(detail, code=code)
        self.retry_after = retry_after
