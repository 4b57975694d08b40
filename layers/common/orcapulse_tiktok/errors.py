"""Typed domain errors. Each carries its HTTP status and a stable error code; ``http.py`` maps them
to the one JSON error shape in a single place."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the API turns into an HTTP answer."""

    status: int = 500
    code: str = "internal_error"
    # More fields of the error object, beyond code and message (``lead_merged``: ``merged_into``).
    details: dict[str, str] | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(DomainError):
    status = 400
    code = "bad_request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class PreconditionFailed(DomainError):
    """The ``If-Match`` of a change names a version the resource no longer has."""

    status = 412
    code = "version_mismatch"


class PreconditionRequired(DomainError):
    """A change without ``If-Match``: the server will not guess which version it was meant for."""

    status = 428
    code = "precondition_required"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    """A body declared as anything but JSON. 400, as DESIGN's tables give every bad body; the code
    tells it apart from a malformed JSON body."""

    status = 400
    code = "unsupported_media_type"


class TransientError(DomainError):
    """A dependency failed in a way that a retry may fix (throttling, timeout, 5xx)."""

    status = 503
    code = "temporarily_unavailable"


class DependencyMisconfigured(DomainError):
    """An AWS service refused a call in a way no retry fixes (access denied, validation, a missing
    resource): a deployment fault, alarmed, never answered with "try again"."""

    status = 500
    code = "dependency_misconfigured"


class ConfigError(DomainError):
    """The function's environment is missing or has an invalid value; the message names it."""

    status = 500
    code = "configuration_error"
