"""HTTP API (payload format 2.0) answers as plain dicts, and the JSON error shape
``{"error": {"code", "message"}}`` every route answers with.

For a function with a single route and no caller (the webhook), a resolver adds nothing but cost:
it answers from these directly. The resolver-based functions (``orcapulse_tiktok.http``) build
their error bodies with the same helpers."""

from __future__ import annotations

import json
from typing import Any

from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.observability import logger

JSON = "application/json"
NO_STORE = {"Cache-Control": "no-store"}


def error_body(code: str, message: str) -> str:
    return json.dumps({"error": {"code": code, "message": message}})


def note_failure(exc: DomainError) -> None:
    """A 5xx is ours (or a dependency's) to look at: log it. A 4xx is the caller's."""
    if exc.status >= 500:
        logger.error("request failed", extra={"error_code": exc.code, "error": exc.message})


def result(status: int, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": JSON, **NO_STORE, **(headers or {})},
        "body": body,
        "isBase64Encoded": False,
    }


def json_result(status: int, payload: Any) -> dict[str, Any]:
    return result(status, json.dumps(payload, separators=(",", ":")))


def error_result(exc: DomainError) -> dict[str, Any]:
    note_failure(exc)
    return result(exc.status, error_body(exc.code, exc.message))
