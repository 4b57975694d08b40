"""TikTok webhook ingress: the bytes of a delivery, its signature, its envelope.

A delivery is checked in a fixed order — size, signature over the raw bytes, JSON, envelope,
client_key, content — and nothing is read or written before it passes. Two apps may sign
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

from orcapulse_tiktok import clock
from orcapulse_tiktok.capture import ACCEPTED, capture
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import BadRequest, DomainError, PayloadTooLarge, Unauthorized
from orcapulse_tiktok.observability import SERVICE, logger, metrics
from orcapulse_tiktok.tiktok import events, signature
from orcapulse_tiktok.tiktok.credentials import AppCredentials, app_credentials, business_app_credentials
from orcapulse_tiktok.tiktok.events import WebhookEvent

MAX_BODY_BYTES = 64 * 1024
# Base64 of MAX_BODY_BYTES bytes: a longer encoded body cannot decode to an acceptable size.
MAX_BASE64_CHARS = 4 * -(-MAX_BODY_BYTES // 3)


def receive(body: str | None, is_base64_encoded: bool, headers: Mapping[str, Any] | None) -> str:
    """Handle one webhook delivery; return ``accepted``, ``duplicate`` or ``ignored``.

    Raises a ``DomainError``: 413/401/400 for a delivery that is refused (nothing is stored); 503
    for a transient fault and 500 for a configuration fault (TikTok retries both; only the second
    alarms)."""
    event_type = "unverified"
    try:
        raw = raw_body(body, is_base64_encoded)
        header = signature.parse_header(signature.header_value(headers))
        settings = get_settings()
        apps = signing_apps()
        creds = apps[
            signature.verify_any(
                header,
                raw,
                [app.client_secret for app in apps],
                now=clock.now(),
                tolerance_seconds=settings.webhook_tolerance_seconds,
            )
        ]
        envelope = events.parse_envelope(raw)
        event_type = events.metric_type(envelope.event)
        # The client_key must be the app whose secret signed it: a delivery naming one app but
        # signed with the other app's secret is refused.
        if not hmac.compare_digest(envelope.client_key.encode(), creds.client_key.encode()):
            raise Unauthorized("The event is for another TikTok app", code="unknown_client_key")
        event = events.parse_event(envelope)
    except DomainError as exc:
        if exc.status < 500:
            logger.warning("webhook rejected", extra={"error_code": exc.code, "event_type": event_type})
            _count(event_type, "rejected", error_code=exc.code)
        else:
            _count(event_type, "failed")
        raise
    if settings.webhook_mode == "sandbox":
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
