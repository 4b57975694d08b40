"""Answers of TikTok API for Business (Accounts API and Marketing API alike): the envelope
``{"code", "message", "request_id", "data"}`` and the typed error of a non-zero ``code``.

``code`` 0 is success and anything else is an error, even with HTTP 200: rate-limit codes and
system errors (≥ 50000) are transient, an expired or invalid token is a dead grant
(``TikTokGrantError``), the rest a refused request. ``request_id`` travels as the error's
``log_id``."""

from __future__ import annotations

import json
from typing import Any

from orcapulse_tiktok.tiktok.client import (
    TikTokError,
    TikTokGrantError,
    TikTokRequestError,
    TikTokResponseError,
    TikTokTransientError,
)

RATE_LIMIT_CODES = frozenset({40100, 40016, 40133})
DEAD_TOKEN_CODES = frozenset({40102, 40105})  # access token expired, access token invalid


def classify(code: int, message: str, request_id: str | None, status: int | None) -> TikTokError:
    """The typed error for a non-zero Business API ``code``."""
    text = str(code)
    if code in DEAD_TOKEN_CODES:
        return TikTokGrantError(text, message, log_id=request_id, status=status)
    if code in RATE_LIMIT_CODES or code >= 50000:
        return TikTokTransientError(text, message, log_id=request_id, status=status)
    return TikTokRequestError(text, message, log_id=request_id, status=status)


def int_of(value: Any) -> int | None:
    """An int from a JSON integer or a string of ASCII digits; never a bool or a float."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
        return int(value)
    return None


def envelope(status: int, content: bytes) -> dict[str, Any]:
    """``data`` of an answer's envelope (HTTP ``status``, body ``content``), or its typed error."""
    try:
        answer = json.loads(content) if content else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TikTokResponseError("malformed_response", status=status)
    request_id = answer.get("request_id") if isinstance(answer.get("request_id"), str) else None
    code = int_of(answer.get("code"))
    if code is None:
        raise TikTokResponseError("malformed_response", log_id=request_id, status=status)
    if code != 0 or status >= 400:
        raise classify(code, str(answer.get("message") or ""), request_id, status)
    data = answer.get("data")
    return data if isinstance(data, dict) else {}
