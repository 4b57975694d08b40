"""Keys derived from secrets in Secrets Manager, each for one purpose (an HMAC of a context string,
so one stored secret never signs two kinds of thing)."""

from __future__ import annotations

import hashlib
import hmac

from orcapulse_tiktok.data import secrets
from orcapulse_tiktok.errors import ConfigError

MIN_KEY_LENGTH = 32


def derived_key(
    secret_id: str | None, context: bytes, *, variable: str, fallback: str, max_age: int
) -> bytes:
    """The key for ``context`` derived from the secret ``secret_id`` (cached ``max_age`` seconds).

    Without a configured secret (the template always sets one) the key is derived from
    ``fallback``: everything still works and is still bound to its context, only the key is not
    secret then. A secret shorter than ``MIN_KEY_LENGTH`` fails naming ``variable``."""
    if not secret_id:
        return hmac.new(fallback.encode(), context, hashlib.sha256).digest()
    raw = secrets.cached_secret(secret_id, max_age=max_age)
    secret = raw.encode() if isinstance(raw, str) else raw
    if not isinstance(secret, bytes) or len(secret) < MIN_KEY_LENGTH:
        raise ConfigError(f"{variable} must hold at least {MIN_KEY_LENGTH} characters")
    return hmac.new(secret, context, hashlib.sha256).digest()
