"""Every error code of the product, once, with its HTTP status.

Registry (OCI distribution-spec) codes render as ``{"errors": [{code, message, detail}]}``;
management-API errors render as the IONOS body ``{httpStatus, messages: [{errorCode, message}]}``.
Handlers raise; one place per HTTP layer renders.
"""

from __future__ import annotations

from enum import Enum, unique
from typing import Any


@unique
class OciCode(Enum):
    """OCI distribution-spec error codes: (HTTP status, the spec's description) each.

    Values must differ (``@unique``): members with equal values become aliases, and an alias renders
    under the first member's name (every 400 would read ``BLOB_UPLOAD_INVALID``).
    """

    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (400, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (405, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    # Not in the spec's table but used by distribution for the same situations.
    RANGE_INVALID = (416, "requested range not satisfiable")
    PAGINATION_NUMBER_INVALID = (400, "invalid number of results requested")
    TAG_INVALID = (400, "manifest tag did not match URI")
    UNKNOWN = (500, "unknown error")
    UNAVAILABLE = (503, "service unavailable")

    @property
    def status(self) -> int:
        return self.value[0]


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
