"""Every error code of the product, once, with its HTTP status.

Registry (OCI distribution-spec) codes render as ``{"errors": [{code, message, detail}]}``;
management-API errors render as the IONOS body ``{httpStatus, messages: [{errorCode, message}]}``.
Handlers raise; one place per HTTP layer renders.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class OciCode(Enum):
    """OCI distribution-spec error codes and the status each one answers with."""

    BLOB_UNKNOWN = 404
    BLOB_UPLOAD_INVALID = 400
    BLOB_UPLOAD_UNKNOWN = 404
    DIGEST_INVALID = 400
    MANIFEST_BLOB_UNKNOWN = 400
    MANIFEST_INVALID = 400
    MANIFEST_UNKNOWN = 404
    NAME_INVALID = 400
    NAME_UNKNOWN = 404
    SIZE_INVALID = 400
    UNAUTHORIZED = 401
    DENIED = 403
    UNSUPPORTED = 405
    TOOMANYREQUESTS = 429
    # Not in the spec's table but used by distribution for the same situations.
    RANGE_INVALID = 416
    PAGINATION_NUMBER_INVALID = 400
    TAG_INVALID = 400
    UNKNOWN = 500
    UNAVAILABLE = 503

    @property
    def status(self) -> int:
        return self.value


class RegistryError(Exception):
    """An error of the /v2/ API; ``status`` overrides the code's default status when set."""

    def __init__(
        self,
        code: OciCode,
        message: str,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status if status is not None else code.status
        self.headers = headers or {}


class ApiError(Exception):
    """An error of the management API (IONOS error body)."""

    def __init__(self, status: int, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code or str(status)


class BadRequest(ApiError):
    def __init__(self, message: str, error_code: str = "400") -> None:
        super().__init__(400, message, error_code)


class NotFound(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(404, message, "404")


class Conflict(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(409, message, "409")


class Unauthorized(ApiError):
    def __init__(self, message: str = "authentication required") -> None:
        super().__init__(401, message, "401")


class Forbidden(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(403, message, "403")
