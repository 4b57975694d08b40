"""TikTok webhook signatures: ``TikTok-Signature: t=<unix seconds>,s=<hex HMAC-SHA256>``.

The MAC is keyed with the app's client secret over ``"<t>." + raw body``. Verification works on the
raw bytes exactly as received (never a re-serialised JSON), compares in constant time and rejects
timestamps outside the tolerance window in either direction (a replayed or a pre-signed request).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from orcapulse_tiktok.errors import Unauthorized

HEADER = "tiktok-signature"
# A real header is ~80 characters; anything far longer is not worth parsing.
MAX_HEADER_LENGTH = 1024
# Unix seconds fit in 11 digits until the year 5138; more digits are not a timestamp.
MAX_TIMESTAMP_DIGITS = 11
_HEX = frozenset("0123456789abcdefABCDEF")


class SignatureHeader(NamedTuple):
    timestamp: str  # as sent: the MAC covers these exact characters
    signatures: tuple[str, ...]

    @property
    def epoch(self) -> int:
        return int(self.timestamp)


def header_value(headers: Mapping[str, Any] | None) -> str | None:
    """The ``TikTok-Signature`` header, whatever its case (HTTP header names are case-insensitive)."""
    for name, value in (headers or {}).items():
        if isinstance(name, str) and name.lower() == HEADER:
            return value if isinstance(value, str) else None
    return None


def parse_header(value: str | None) -> SignatureHeader:
    """Split the header into its timestamp and signature(s).

    No header is ``signature_missing``; anything that is not exactly one decimal ``t`` and at least
    one 64-hex-digit ``s`` is ``signature_malformed``. Unknown ``k=v`` elements are ignored, as a
    future scheme may add them."""
    if value is None or not value.strip():
        raise Unauthorized("The TikTok-Signature header is missing", code="signature_missing")
    if len(value) > MAX_HEADER_LENGTH:
        raise _malformed()
    timestamps: list[str] = []
    signatures: list[str] = []
    for element in value.split(","):
        prefix, sep, item = element.strip().partition("=")
        if not sep:
            raise _malformed()
        if prefix == "t":
            timestamps.append(item)
        elif prefix == "s":
            signatures.append(item)
    if len(timestamps) != 1 or not signatures:
        raise _malformed()
    ts = timestamps[0]
    if not ts.isascii() or not ts.isdigit() or len(ts) > MAX_TIMESTAMP_DIGITS:
        raise _malformed()
    if any(len(s) != 64 or not set(s) <= _HEX for s in signatures):
        raise _malformed()
    return SignatureHeader(timestamp=ts, signatures=tuple(s.lower() for s in signatures))


def expected_signature(secret: str, timestamp: int | str, raw_body: bytes) -> str:
    """The hex HMAC-SHA256 TikTok computes for ``raw_body`` signed at ``timestamp``."""
    payload = str(timestamp).encode("ascii") + b"." + raw_body
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def verify(
    header: SignatureHeader, raw_body: bytes, secret: str, *, now: float, tolerance_seconds: int
) -> None:
    """Accept the request only if one signature matches and its timestamp is inside the window.

    The MAC is checked first, so ``signature_expired`` only ever describes an authentic request
    (useful when a clock drifts) and tells a forger nothing."""
    verify_any(header, raw_body, (secret,), now=now, tolerance_seconds=tolerance_seconds)


def verify_any(
    header: SignatureHeader,
    raw_body: bytes,
    secrets: Sequence[str],
    *,
    now: float,
    tolerance_seconds: int,
) -> int:
    """``verify`` against each app secret (Login Kit's, the Business app's); the index of the one
    that signed the request. Every secret and candidate is compared, so the time taken says
    neither which app nor which candidate came close."""
    found = -1
    for index, secret in enumerate(secrets):
        expected = expected_signature(secret, header.timestamp, raw_body)
        matched = False
        for candidate in header.signatures:
            matched |= hmac.compare_digest(expected, candidate)
        if matched and found < 0:
            found = index
    if found < 0:
        raise Unauthorized("The TikTok-Signature does not match the body", code="signature_invalid")
    if abs(now - header.epoch) > tolerance_seconds:
        raise Unauthorized(
            "The TikTok-Signature timestamp is outside the accepted window", code="signature_expired"
        )
    return found


def _malformed() -> Unauthorized:
    return Unauthorized("The TikTok-Signature header is malformed", code="signature_malformed")
