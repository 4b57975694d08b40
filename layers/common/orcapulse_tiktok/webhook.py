"""TikTok webhook ingress: the bytes of a delivery, its signature, its envelope.

A delivery is checked in a fixed order — size, signature over the raw bytes, JSON, envelope,
client_key, content — and nothing is read or written before the signature passes. A verified
delivery is kept raw in the delivery archive before anything else (``archive.py``: replay,
quarantine). Two apps may sign
deliveries: the Login Kit app and the TikTok API for Business app (business accounts, DESIGN §8);
the signature says which, and the envelope's ``client_key`` must name that same app. A verified event goes to
``capture`` (live mode) or is only logged (sandbox mode). Each delivery is counted by event type
and outcome; a refused one by its error code.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from orcapulse_tiktok import archive, clock
from orcapulse_tiktok.capture import ACCEPTED, capture
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data.deliveries import Archived
from orcapulse_tiktok.errors import BadRequest, DomainError, PayloadTooLarge, Unauthorized
from orcapulse_tiktok.observability import SERVICE, logger, metrics
from orcapulse_tiktok.tiktok import events, signature
from orcapulse_tiktok.tiktok.credentials import AppCredentials, app_credentials, business_app_credentials
from orcapulse_tiktok.tiktok.events import WebhookEvent

MAX_BODY_BYTES = 64 * 1024
# Base64 of MAX_BODY_BYTES bytes: a longer encoded body cannot decode to an acceptable size.
MAX_BASE64_CHARS = 4 * -(-MAX_BODY_BYTES // 3)


ROUTE = "POST /webhooks/tiktok"


def receive(body: str | None, is_base64_encoded: bool, headers: Mapping[str, Any] | None) -> str:
    """Handle one webhook delivery; return ``accepted``, ``duplicate`` or ``ignored``.

    Raises a ``DomainError``: 413/401 for a delivery that is not verified (nothing is kept); 400
    for a verified one that is not JSON or not the envelope (kept in the archive); 503 for a
    transient fault and 500 for a configuration fault (TikTok retries both; only the second
    alarms). A verified delivery the code cannot process is quarantined and answered ``accepted``
    (``archive.py``)."""
    try:
        raw = raw_body(body, is_base64_encoded)
        header = signature.parse_header(signature.header_value(headers))
        creds = _signer(header, raw, now=clock.now())
    except DomainError as exc:
        _refused("unverified", exc)
        raise
    if get_settings().webhook_mode == "sandbox":
        # Sandbox stores nothing, the archive included: it verifies, logs and acknowledges.
        return process(raw, creds)
    return archive.ingest(ROUTE, raw, headers, lambda verified: process(verified, creds))


def replay(delivery: Archived) -> str:
    """Run a kept delivery through the same processing again (``make replay``). Its signature is
    checked once more, at the time it was signed: that names the app that signed it, and proves
    the archive holds what TikTok sent."""
    header = signature.parse_header(signature.header_value(delivery.headers))
    creds = _signer(header, delivery.body, now=float(header.epoch))
    return archive.rerun(delivery, lambda verified: process(verified, creds))


def process(raw: bytes, creds: AppCredentials) -> str:
    """A verified delivery's envelope and event, then the event captured (live) or logged (sandbox)."""
    event_type = "other"
    try:
        envelope = events.parse_envelope(raw)
        event_type = events.metric_type(envelope.event)
        # The client_key must be the app whose secret signed it: a delivery naming one app but
        # signed with the other app's secret is refused.
        if not hmac.compare_digest(envelope.client_key.encode(), creds.client_key.encode()):
            raise Unauthorized("The event is for another TikTok app", code="unknown_client_key")
        event = events.parse_event(envelope)
    except DomainError as exc:
        _refused(event_type, exc)
        raise
    if get_settings().webhook_mode == "sandbox":
        _log_sandbox(event)
        _count(event_type, ACCEPTED)
        return ACCEPTED
    try:
        outcome = capture(event)
    except DomainError:
        _count(event_type, "failed")
        raise
    _count(event_type, outcome)
    return outcome


def _signer(header: signature.SignatureHeader, raw: bytes, *, now: float) -> AppCredentials:
    """The app whose secret signed ``raw`` (401 when none did, or the signature is stale at ``now``)."""
    apps = signing_apps()
    return apps[
        signature.verify_any(
            header,
            raw,
            [app.client_secret for app in apps],
            now=now,
            tolerance_seconds=get_settings().webhook_tolerance_seconds,
        )
    ]


def _refused(event_type: str, exc: DomainError) -> None:
    """Count a delivery that did not get through: refused (4xx, by its code), failed (5xx), or —
    content the parser does not know — about to be quarantined."""
    if exc.status >= 500:
        _count(event_type, "failed")
    elif exc.code in archive.ENVELOPE_REFUSALS or event_type == "unverified":
        logger.warning("webhook rejected", extra={"error_code": exc.code, "event_type": event_type})
        _count(event_type, "rejected", error_code=exc.code)
    else:
        _count(event_type, "quarantined", error_code=exc.code)


def signing_apps() -> list[AppCredentials]:
    """The apps whose deliveries this webhook accepts: the Login Kit app, and the TikTok API for
    Business app when ``TIKTOK_BUSINESS_APP_SECRET_ID`` is set (DESIGN §8)."""
    apps = [app_credentials()]
    if get_settings().business_app_secret_id:
        apps.append(business_app_credentials())
    return apps


def raw_body(body: str | None, is_base64_encoded: bool, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body exactly as TikTok sent it (what the signature covers); over ``limit``
    bytes (64 KiB here; the lead-form webhook sets its own) is 413.

    The size is checked before anything else, and before decoding where the length alone decides."""
    if body is None:
        return b""
    too_large = PayloadTooLarge(f"The body is larger than {limit} bytes")
    if is_base64_encoded:
        if len(body) > 4 * -(-limit // 3):
            raise too_large
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("The body is not valid base64", code="invalid_json") from None
    else:
        if len(body) > limit:  # every character is at least one byte
            raise too_large
        try:
            # API Gateway hands over the body as text; surrogateescape restores non-UTF-8 bytes.
            raw = body.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise BadRequest("The body is not valid JSON", code="invalid_json") from None
    if len(raw) > limit:
        raise too_large
    return raw


def _log_sandbox(event: WebhookEvent) -> None:
    envelope = event.envelope
    logger.info(
        "webhook event verified (sandbox: not stored)",
        extra={
            "event_type": envelope.event,
            "user_openid": envelope.user_openid,
            "create_time": envelope.create_time,
            "content_fields": sorted(event.content)[:50],
        },
    )
    # Message text is personal data: only ever at DEBUG.
    logger.debug("webhook event content", extra={"content": event.content})


def _count(event_type: str, outcome: str, *, error_code: str | None = None) -> None:
    """``WebhookEvents`` by event type and outcome, and ``WebhookRejected`` by error code. Each is
    its own EMF document, so a delivery keeps its dimensions whatever else the invocation emits."""
    single("WebhookEvents", event_type=event_type, outcome=outcome)
    if error_code is not None:
        single("WebhookRejected", error_code=error_code)


def single(name: str, count: int = 1, **dimensions: str) -> None:
    """One count metric in an EMF document of its own, with ``dimensions``."""
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=count,
        namespace=metrics.namespace,
        default_dimensions={"service": SERVICE},
    ) as metric:
        for key, value in dimensions.items():
            metric.add_dimension(name=key, value=value)
