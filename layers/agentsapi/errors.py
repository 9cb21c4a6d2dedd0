"""Domain errors. The handlers map them to HTTP in one place (``http/errors.py``)."""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    error_type = "server_error"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    @property
    def headers(self) -> dict[str, str]:
        return {}

    @property
    def details(self) -> dict[str, object]:
        """Fields the error body carries besides the standard ones (e.g. a quota's figures)."""
        return {}


class Unauthorized(ApiError):
    status = 401
    error_type = "authentication_error"


class MethodNotAllowed(ApiError):
    """The path exists, not with this method: ``Allow`` lists those it has."""

    status = 405
    error_type = "invalid_request_error"

    def __init__(self, method: str, path: str, allowed: list[str]) -> None:
        super().__init__(f"{method} is not allowed on {path}; allowed: {', '.join(allowed)}", param="method")
        self.allowed = allowed

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": ", ".join(self.allowed)}


class RetryLater(ApiError):
    """A refusal that passes: ``Retry-After`` says when to come back."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class RateLimited(RetryLater):
    """The workspace used up its requests for this window."""

    status = 429
    error_type = "rate_limit_error"


class ServiceUnavailable(RetryLater):
    """A shared resource (e.g. every sandbox worker) stayed busy past its wait deadline."""

    status = 503
    error_type = "service_unavailable"


class NotFound(ApiError):
    status = 404
    error_type = "invalid_request_error"


class InvalidRequest(ApiError):
    status = 400
    error_type = "invalid_request_error"


class Conflict(ApiError):
    """A concurrent writer won (e.g. two appends to one conversation); nothing was lost."""

    status = 409
    error_type = "invalid_request_error"


class UnsupportedMediaType(ApiError):
    status = 415
    error_type = "invalid_request_error"


class PayloadTooLarge(ApiError):
    status = 413
    error_type = "invalid_request_error"


class QuotaExceeded(ApiError):
    """The workspace's storage quota has no room for what would be stored; nothing was."""

    status = 507
    error_type = "storage_quota_exceeded"

    def __init__(self, message: str, quota_bytes: int, used_bytes: int, requested_bytes: int,
                 param: str | None = None) -> None:
        super().__init__(message, param)
        self.quota_bytes, self.used_bytes, self.requested_bytes = quota_bytes, used_bytes, requested_bytes

    @property
    def details(self) -> dict[str, object]:
        return {"quota": {"quota_bytes": self.quota_bytes, "used_bytes": self.used_bytes,
                          "requested_bytes": self.requested_bytes}}


class InsufficientStorage(ApiError):
    """The server's own disk is down to its reserve: reads and deletes still work, writes wait."""

    status = 507
    error_type = "insufficient_storage"


class FunctionResultsMissing(ApiError):
    """Mistral's 400 with integer code 3001."""

    status = 400
    error_type = "invalid_request_error"
    code = 3001

    def __init__(self, missing: list[str]) -> None:
        super().__init__(
            "Cannot append other inputs while function results are still missing. "
            f"Provide function results first for: {missing}"
        )
        self.missing = missing


class ValidationFailed(ApiError):
    """A body that does not match the schema: 422 with FastAPI-style details."""

    status = 422
    error_type = "invalid_request_error"

    def __init__(self, detail: list[dict[str, object]]) -> None:
        fields = ", ".join(".".join(str(p) for p in d.get("loc", [])) for d in detail[:5])
        super().__init__(f"invalid request: {fields}")
        self.detail = detail
