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
