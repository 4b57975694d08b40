"""The ``X-Open-Signature`` of the Marketing API's webhook deliveries (lead forms, DESIGN §10).

The header is the lowercase hex HMAC-SHA256 of the delivery keyed with the Business app's
``secret``. What it covers: the request body with every non-ASCII character written as a JSON
``\\uXXXX`` escape (TikTok's webhook docs give ``äöå`` → ``\\u00e4\\u00f6\\u00e5``; characters outside
the BMP as a surrogate pair). For an all-ASCII body that is the body itself, byte for byte. There is
no timestamp in the signed bytes (unlike ``TikTok-Signature``): a replay of a genuine delivery is
harmless because every entry is captured idempotently. docs/lead-forms.md has the sources and the
test vector.

Both the escaped form and the raw bytes are accepted: they only differ for a body with non-ASCII
characters, and either needs the app secret to produce, so accepting both costs no security and
keeps working whichever form TikTok's sender hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

HEADER = "x-open-signature"
_HEX = re.compile(r"[0-9a-fA-F]{64}")


def header_value(headers: Mapping[str, Any] | None) -> str | None:
    """The ``X-Open-Signature`` header (API Gateway lowercases names; any case is accepted)."""
    for name, value in (headers or {}).items():
        if isinstance(name, str) and name.lower() == HEADER and isinstance(value, str):
            return value.strip()
    return None


def escape_non_ascii(raw: bytes) -> bytes:
    """``raw`` with every non-ASCII UTF-8 character as a lowercase ``\\uXXXX`` escape; everything
    else (whitespace, key order, bytes that are not UTF-8) exactly as received."""
    if raw.isascii():
        return raw
    out = bytearray()
    for char in raw.decode("utf-8", "surrogateescape"):
        code = ord(char)
        if code < 0x80:
            out.append(code)
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8: passed through as it came
            out.append(code - 0xDC00)
        elif code > 0xFFFF:
            code -= 0x10000
            out += b"\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))
        else:
            out += b"\\u%04x" % code
    return bytes(out)


def sign(raw: bytes, secret: str) -> str:
    """The signature TikTok sends for ``raw`` (as tests and the local emulator need it)."""
    return hmac.new(secret.encode(), escape_non_ascii(raw), hashlib.sha256).hexdigest()


def verify(signature: str | None, raw: bytes, secret: str) -> bool:
    """Whether ``signature`` signs ``raw`` with ``secret``, compared in constant time."""
    if not signature or not _HEX.fullmatch(signature):
        return False
    given = signature.lower().encode()
    escaped = escape_non_ascii(raw)
    ok = hmac.compare_digest(given, hmac.new(secret.encode(), escaped, hashlib.sha256).hexdigest().encode())
    if escaped is not raw:
        raw_mac = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest().encode()
        ok = hmac.compare_digest(given, raw_mac) or ok
    return ok
