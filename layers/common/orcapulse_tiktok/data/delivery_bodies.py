"""The delivery archive's overflow store: bodies too large for a DynamoDB item, one S3 object each
in ``DELIVERY_BODIES_BUCKET`` (DESIGN §11; docs/operations.md, "Large bodies").

A lead-form delivery can be 4 MiB (1,000 entries); a DynamoDB item stops at 400 KB. A body over
``INLINE_BODY_MAX_BYTES`` is written here first, then the archive item that names its key
(``data.deliveries.keep``): an object without its item is an orphan the bucket's lifecycle expires;
an item never names an object that was not written. The key is the delivery id (a hash of route and
body), so a retry after a lost answer overwrites the same object with the same bytes.

The bucket encrypts every object by default (SSE-S3, or the optional customer-managed key), so a
write sends no encryption headers."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.clients import client

# DynamoDB's item limit is 400 KB (409,600 bytes), names and values together. An archive item
# holds the body plus at most 16,384 header characters (archive.MAX_HEADER_CHARS: 65,536 bytes if
# every one took four UTF-8 bytes) and a few hundred bytes of keys: 320 KiB + 64 KiB + 1 KiB fits.
INLINE_BODY_MAX_BYTES = 320 * 1024
KEY_PREFIX = "deliveries/"
_MISSING = frozenset({"NoSuchKey", "404"})


def overflows(body: bytes) -> bool:
    """Whether ``body`` is kept in S3 rather than in its archive item."""
    return len(body) > INLINE_BODY_MAX_BYTES


def key_of(delivery_id: str) -> str:
    """The object key of a delivery's body."""
    return KEY_PREFIX + delivery_id


def put(key: str, body: bytes) -> None:
    """Write one body (PutObject). Idempotent: the same key always holds the same bytes."""
    _call("keep delivery body", "put_object", Key=key, Body=body, ContentType="application/octet-stream")


def get(key: str) -> bytes | None:
    """One body, or ``None`` when the object is gone (expired or erased)."""
    try:
        answer = _s3().get_object(Bucket=_bucket(), Key=key)
        data: bytes = answer["Body"].read()
    except (ClientError, BotoCoreError) as exc:
        if faults.error_code(exc) in _MISSING:
            return None
        raise faults.fault("load delivery body", exc) from None
    return data


def delete(key: str) -> None:
    """Delete one body (DeleteObject). Absent is done: S3 answers 204 either way."""
    _call("delete delivery body", "delete_object", Key=key)


def _call(action: str, operation: str, **params: Any) -> None:
    try:
        getattr(_s3(), operation)(Bucket=_bucket(), **params)
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault(action, exc) from None


def _s3() -> Any:
    return client("s3")


def _bucket() -> str:
    return get_settings().require("delivery_bodies_bucket")
