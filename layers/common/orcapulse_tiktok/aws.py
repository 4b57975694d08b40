"""Lazily created boto3 clients, reused across warm invocations of a container."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# Lambda has a short budget per request: fail fast and let the caller's retry policy decide.
_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


@cache
def client(service: str) -> Any:
    """A boto3 client for ``service``, created on first use."""
    return boto3.session.Session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def reset_clients() -> None:
    """Forget cached clients (tests switch AWS endpoints between cases)."""
    client.cache_clear()


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a ``ClientError``, or of the one behind a PynamoDB exception.

    ``None`` for transport faults (timeouts, connection errors). Use this rather than PynamoDB's
    ``cause_response_code``, which raises ``AttributeError`` when the cause is a botocore timeout
    (its ``response`` attribute is ``None``)."""
    cause = getattr(exc, "cause", None) or exc
    response = getattr(cause, "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    return str(code) if code else None
