"""Lazily created AWS clients, reused across warm invocations of a container.

Made from a botocore session rather than boto3: the clients are the same, and a handler whose
libraries do not need boto3 (PynamoDB talks to botocore) skips importing it and its resource
layer on every cold start."""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
from botocore.config import Config

# Lambda has a short budget per request: fail fast and let the caller's retry policy decide.
_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


@cache
def client(service: str) -> Any:
    """A client for ``service``, created on first use (region and endpoint from the environment,
    as boto3 would take them)."""
    return botocore.session.get_session().create_client(service, config=_CONFIG)


def reset_clients() -> None:
    """Forget cached clients (tests switch AWS endpoints between cases)."""
    client.cache_clear()
