"""Time helpers: one place that knows the product's timestamp format (ISO 8601 UTC, ``Z``)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    """Seconds since the epoch; tests freeze or move this."""
    return time.time()


def iso(epoch_seconds: float) -> str:
    """ISO 8601 UTC with a ``Z`` suffix and whole seconds: ``2026-11-25T08:00:00Z``."""
    return datetime.fromtimestamp(int(epoch_seconds), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 timestamp; a naive one is taken as UTC. Raises ``ValueError``."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith(("Z", "z")) else value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)
