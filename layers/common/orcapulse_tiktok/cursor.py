"""Opaque, tamper-evident paging cursors.

A cursor is ``base64url(JSON payload) + "." + base64url(HMAC-SHA256(payload))``. The payload binds
the position to the workspace that received it and to a fingerprint of the query it belongs to,
so a cursor altered by a client, replayed by another workspace or reused with other filters is
rejected before it reaches DynamoDB. The HMAC key comes from Secrets Manager
(``CURSOR_KEY_SECRET_ID``), cached per container; rotating the secret invalidates outstanding
cursors, which clients see as ``invalid_cursor`` and answer by starting from the first page."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import BadRequest
from orcapulse_tiktok.keys import derived_key

# Short enough that a rotated key is picked up within minutes, long enough to spare Secrets
# Manager a call on nearly every page.
CACHE_SECONDS = 300
MAX_CURSOR_LENGTH = 1024
_VERSION = 1
# The stored secret may serve other purposes later: derive a key that only signs cursors.
_KEY_CONTEXT = b"orcapulse social-leads cursor v1"


class InvalidCursor(BadRequest):
    code = "invalid_cursor"


def _key() -> bytes:
    settings = get_settings()
    # Without a configured key cursors are still validated and bound to the caller's workspace and
    # filters, so an altered cursor is refused and can never reach another workspace.
    return derived_key(
        settings.cursor_key_secret_id,
        _KEY_CONTEXT,
        variable="CURSOR_KEY_SECRET_ID",
        fallback=f"unkeyed-cursor\x1f{settings.require('leads_table')}",
        max_age=CACHE_SECONDS,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def fingerprint(spec: Any) -> str:
    """A short digest of a query's canonical description (JSON-serialisable)."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def issue(*, workspace_id: str, query: str, position: str) -> str:
    """A cursor that resumes ``query`` (a fingerprint) at ``position``, for ``workspace_id`` only."""
    body = {"v": _VERSION, "w": workspace_id, "q": query, "p": position}
    payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode("ascii"))
    return f"{payload}.{_mac(_key(), payload)}"


def resume(token: str, *, workspace_id: str, query: str) -> str:
    """The position a cursor issued by ``issue`` resumes at.

    Anything but an unaltered cursor issued to this workspace for this same query is
    ``InvalidCursor``; nothing in the token is trusted before its MAC checks out.
    """
    if not token or len(token) > MAX_CURSOR_LENGTH or not token.isascii() or token.count(".") != 1:
        raise InvalidCursor("The cursor is not valid")
    payload, mac = token.split(".")
    if not hmac.compare_digest(mac, _mac(_key(), payload)):
        raise InvalidCursor("The cursor is not valid")
    try:
        body = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):  # pragma: no cover - only a leaked key gets this far
        raise InvalidCursor("The cursor is not valid") from None
    if not isinstance(body, dict) or body.get("v") != _VERSION or not isinstance(body.get("p"), str):
        raise InvalidCursor("The cursor is not valid")
    if body.get("w") != workspace_id:
        raise InvalidCursor("The cursor was not issued to this workspace")
    if body.get("q") != query:
        raise InvalidCursor("The cursor belongs to a query with other filters")
    position: str = body["p"]
    return position
