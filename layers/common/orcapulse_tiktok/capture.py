"""TikTok webhook deliveries: verify, parse, and turn events into social leads.

A delivery is checked in a fixed order — size, signature over the raw bytes, JSON, envelope,
client_key, content — and nothing is read or written before it passes. In live mode the event is
routed to every integration of its ``user_openid`` (one TikTok account may be connected by several
workspaces):

- comment and message events put one lead per integration with a deterministic id and a
  conditional PutItem, so a redelivery, even a concurrent one, fails the condition and is a
  ``duplicate``; each new lead is then announced on the event bus from here, through the
  pending-announcement marker the put wrote with it (see ``announce.py``), and a redelivery that
  finds a lead whose announcement failed completes it;
- comment delete/hide/unhide updates the lead that comment made;
- ``authorization.removed`` revokes the integration and deletes its dead token secret.

A transient AWS failure, a failed announcement included, is a 503 so TikTok retries; every step is
idempotent, so the retry finishes what the first attempt started.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException, UpdateError

from orcapulse_tiktok import announce, aws, clock
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import BadRequest, DomainError, PayloadTooLarge, TransientError, Unauthorized
from orcapulse_tiktok.models.integration import Integration, integrations
from orcapulse_tiktok.models.lead import Author, Lead, lead_id_for, leads
from orcapulse_tiktok.observability import SERVICE, logger, metrics
from orcapulse_tiktok.tiktok import events, signature
from orcapulse_tiktok.tiktok.credentials import AppCredentials, app_credentials
from orcapulse_tiktok.tiktok.events import (
    AuthorizationRemoved,
    CommentUpdate,
    HighIntentComment,
    MessageReceived,
    WebhookEvent,
)

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
IGNORED = "ignored"

MAX_BODY_BYTES = 64 * 1024
# Base64 of MAX_BODY_BYTES bytes: a longer encoded body cannot decode to an acceptable size.
MAX_BASE64_CHARS = 4 * -(-MAX_BODY_BYTES // 3)

REVOKED_REASONS = {
    0: "unknown",
    1: "user_disconnected",
    2: "account_deleted",
    3: "age_changed",
    4: "account_banned",
    5: "developer_revoked",
}
# comment_action → the lead's source_state. "insert" makes the lead; anything else is ignored.
SOURCE_STATES = {"delete": "deleted", "set_to_hidden": "hidden", "set_to_public": "present"}
# TikTok stops redelivering after 72 hours; inside that window a removal created before the
# integration was (re)connected is a late redelivery and must not revoke the new connection.
REDELIVERY_WINDOW_SECONDS = 72 * 3600
CLOCK_SKEW_SECONDS = 60
# last_event_at is kept to this resolution: rewriting it on every event would cost a write each.
LAST_EVENT_RESOLUTION_SECONDS = 60


class Target(NamedTuple):
    """One integration an event is routed to (from the ``by_open_id`` index)."""

    workspace_id: str
    integration_id: str
    status: str
    last_event_at: str | None = None


class Applied(NamedTuple):
    """What an event did to one integration: the outcome, the lead whose announcement this
    delivery now owns (created, or taken over from a failed attempt), and when the integration saw
    activity (for ``last_event_at``; ``None`` when the event changed nothing)."""

    outcome: str
    owned: Lead | None = None
    active_at: float | None = None
    created: str | None = None  # the id of the lead this event created


def receive(body: str | None, is_base64_encoded: bool, headers: Mapping[str, Any] | None) -> str:
    """Handle one webhook delivery; return ``accepted``, ``duplicate`` or ``ignored``.

    Raises a ``DomainError``: 413/401/400 for a delivery that is refused (nothing is stored), 503
    for a transient fault (TikTok retries)."""
    event_type = "unverified"
    try:
        raw = raw_body(body, is_base64_encoded)
        header = signature.parse_header(signature.header_value(headers))
        creds = _credentials()
        settings = get_settings()
        signature.verify(
            header,
            raw,
            creds.client_secret,
            now=clock.now(),
            tolerance_seconds=settings.webhook_tolerance_seconds,
        )
        envelope = events.parse_envelope(raw)
        event_type = events.metric_type(envelope.event)
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


def raw_body(body: str | None, is_base64_encoded: bool) -> bytes:
    """The request body exactly as TikTok sent it (what the signature covers); over 64 KiB is 413.

    The size is checked before anything else, and before decoding where the length alone decides."""
    if body is None:
        return b""
    too_large = PayloadTooLarge(f"The body is larger than {MAX_BODY_BYTES} bytes")
    if is_base64_encoded:
        if len(body) > MAX_BASE64_CHARS:
            raise too_large
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("The body is not valid base64", code="invalid_json") from None
    else:
        if len(body) > MAX_BODY_BYTES:  # every character is at least one byte
            raise too_large
        try:
            # API Gateway hands over the body as text; surrogateescape restores non-UTF-8 bytes.
            raw = body.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise BadRequest("The body is not valid JSON", code="invalid_json") from None
    if len(raw) > MAX_BODY_BYTES:
        raise too_large
    return raw


def capture(event: WebhookEvent) -> str:
    """Apply a verified event to every integration of its TikTok account (live mode)."""
    payload = event.payload
    if payload is None or (
        isinstance(payload, CommentUpdate)
        and payload.action != "insert"
        and payload.action not in SOURCE_STATES
    ):
        # Decided from the event alone: no need to look the account up.
        logger.info("webhook event acknowledged", extra={"event_type": event.type, "reason": "not_captured"})
        return IGNORED
    targets = _targets(event.envelope.user_openid)
    if isinstance(payload, AuthorizationRemoved):
        return _for_each(targets, lambda t: _revoke(event, payload, t), event)
    live = [t for t in targets if t.status != "revoked"]
    if not live:
        logger.info(
            "webhook event ignored",
            extra={"event_type": event.type, "reason": "revoked_account" if targets else "unknown_account"},
        )
        return IGNORED
    return _for_each(live, lambda t: _apply(event, t), event)


def _for_each(targets: list[Target], action: Callable[[Target], Applied], event: WebhookEvent) -> str:
    """Run ``action`` for every target, then announce the leads it made (one PutEvents for all)
    and record activity. A transient failure of one target does not stop the others, nor the
    announcement of what they created; it is re-raised at the end so TikTok redelivers (the ones
    already done answer duplicate)."""
    if not targets:
        logger.info("webhook event ignored", extra={"event_type": event.type, "reason": "unknown_account"})
        return IGNORED
    applied: list[tuple[Target, Applied]] = []
    failed: TransientError | None = None
    for target in targets:
        try:
            applied.append((target, action(target)))
        except TransientError as exc:
            failed = exc
    owned = [a.owned for _, a in applied if a.owned is not None]
    if owned:
        try:
            announce.announce_owned(owned)
        except TransientError as exc:
            failed = failed or exc
    for target, result in applied:
        if result.active_at is not None and _stale(target.last_event_at, result.active_at):
            _touch(target, result.active_at)
    if failed is not None:
        raise failed
    outcome = _combine(result.outcome for _, result in applied)
    # One line per delivery (each log line costs CPU on every event of a burst).
    logger.info(
        "webhook event handled",
        extra={
            "event_type": event.type,
            "outcome": outcome,
            "integrations": len(targets),
            "leads_created": [a.created for _, a in applied if a.created is not None],
        },
    )
    return outcome


def _combine(outcomes: Iterable[str]) -> str:
    seen = set(outcomes)
    for outcome in (ACCEPTED, DUPLICATE):
        if outcome in seen:
            return outcome
    return IGNORED


def _apply(event: WebhookEvent, target: Target) -> Applied:
    payload = event.payload
    if isinstance(payload, CommentUpdate):
        if payload.action == "insert":
            return _comment_lead(event, target, payload, parent_comment_id=payload.parent_comment_id)
        state = SOURCE_STATES.get(payload.action)
        if state is None:
            return Applied(IGNORED)
        return _set_source_state(event, target, payload.comment_id, state)
    if isinstance(payload, MessageReceived):
        return _create_lead(
            event,
            target,
            capture_source="tiktok_dm",
            object_key=f"dm:{payload.message_id}",
            author=Author(id=payload.from_user_id, username=payload.from_username),
            message=payload.text,
            source_ref={"conversation_id": payload.conversation_id, "message_id": payload.message_id},
        )
    if isinstance(payload, HighIntentComment):
        return _comment_lead(event, target, payload, high_intent=True)
    return Applied(IGNORED)


def _comment_lead(
    event: WebhookEvent,
    target: Target,
    comment: CommentUpdate | HighIntentComment,
    *,
    parent_comment_id: str | None = None,
    high_intent: bool = False,
) -> Applied:
    """A new comment, or TikTok's high-intent flag on one: both are keyed by the comment, so the
    flag lands on the comment's lead whichever event arrives first."""
    return _create_lead(
        event,
        target,
        capture_source="tiktok_comment",
        object_key=f"comment:{comment.comment_id}",
        # unique_identifier is the only commenter identity TikTok documents for comment events.
        author=Author(id=comment.user_id or comment.unique_identifier, username=comment.unique_identifier),
        message=comment.text,
        source_ref={
            "video_id": comment.video_id,
            "comment_id": comment.comment_id,
            "parent_comment_id": parent_comment_id,
        },
        high_intent=high_intent,
    )


def _create_lead(
    event: WebhookEvent,
    target: Target,
    *,
    capture_source: str,
    object_key: str,
    author: Author,
    message: str | None,
    source_ref: dict[str, str | None],
    high_intent: bool = False,
) -> Applied:
    """Put the lead, marked pending announcement, unless it exists: ``accepted`` (the delivery
    announces it) or ``duplicate``. One PutItem either way; a duplicate whose lead is still
    pending after a failed announcement takes the announcement over."""
    captured_ms = event.occurred_ms()
    now = clock.now()
    lead = leads()(
        target.workspace_id,
        lead_id_for(target.integration_id, object_key),
        integration_id=target.integration_id,
        platform="tiktok",
        capture_source=capture_source,
        status="new",
        author=author,
        message=message or "",
        source_ref={k: v for k, v in source_ref.items() if v is not None},
        high_intent=high_intent,
        source_state="present",
        captured_at=clock.iso(captured_ms / 1000),
        captured_ms=captured_ms,
        created_at=clock.iso(now),
        event_type=event.type,
    )
    lead.fill_index_keys()
    now_ms = int(now * 1000)
    try:
        existing = announce.put_new(lead, now=now_ms)
    except (ClientError, BotoCoreError) as exc:
        raise _transient("put lead", exc) from None
    if existing is not None:
        if high_intent:
            _mark_high_intent(lead)
        return Applied(DUPLICATE, owned=_take_over(existing, now_ms))
    metrics.add_metric(name="LeadsCreated", unit=MetricUnit.Count, value=1)
    # Logged once per delivery, with the others, in "webhook event handled".
    return Applied(ACCEPTED, owned=lead, active_at=now, created=lead.lead_id)


def _take_over(existing: Lead, now_ms: int) -> Lead | None:
    """A redelivery found the lead: if its announcement is pending and nobody owns it any more
    (the first attempt's publish failed, or it died), claim it, so this delivery announces it.
    A lead being announced right now by a concurrent delivery is left to that delivery."""
    if not announce.is_due(existing, now_ms):
        return None
    try:
        claimed = announce.claim(existing.workspace_id, existing.lead_id, now=now_ms)
    except UpdateError as exc:
        raise _transient("claim pending announcement", exc) from None
    if claimed is not None:
        logger.info("completing a pending lead announcement", extra={"lead_id": claimed.lead_id})
    return claimed


def _mark_high_intent(lead: Lead) -> None:
    """TikTok flagged a comment that already made a lead: flag the lead (idempotent)."""
    try:
        type(lead)._get_connection().update_item(
            lead.workspace_id,
            range_key=lead.lead_id,
            actions=[Lead.high_intent.set(True)],
            condition=Lead.lead_id.exists(),
        )
    except UpdateError as exc:
        if not _condition_failed(exc):
            raise _transient("flag high intent", exc) from None


def _set_source_state(event: WebhookEvent, target: Target, comment_id: str, state: str) -> Applied:
    """Record that the comment behind a lead was deleted, hidden or made public again.

    One conditional UpdateItem: no lead for the comment, or a newer action already applied, is
    ``ignored``; the same state again is ``duplicate``."""
    model = leads()
    when = event.occurred_ms()
    try:
        result = model._get_connection().update_item(
            target.workspace_id,
            range_key=lead_id_for(target.integration_id, f"comment:{comment_id}"),
            actions=[Lead.source_state.set(state), Lead.source_state_ms.set(when)],
            condition=Lead.lead_id.exists()
            & (Lead.source_state_ms.does_not_exist() | (Lead.source_state_ms <= when)),
            return_values="ALL_OLD",
        )
    except UpdateError as exc:
        if _condition_failed(exc):
            return Applied(IGNORED)
        raise _transient("update lead source state", exc) from None
    before = result.get("Attributes", {}).get("source_state", {}).get("S")
    if before == state:
        return Applied(DUPLICATE)
    logger.info("lead source state changed", extra={"integration_id": target.integration_id, "state": state})
    return Applied(ACCEPTED, active_at=clock.now())


def _revoke(event: WebhookEvent, removal: AuthorizationRemoved, target: Target) -> Applied:
    """TikTok already killed the token: mark the integration revoked (kept visible, with its
    reason, out of the refresh index) and delete its token secret."""
    # Imported here: revocations are rare, and every cold webhook container would pay for it.
    from orcapulse_tiktok import vault

    if target.status == "revoked":
        # A redelivery; deleting again finishes a revocation whose secret delete had failed.
        vault.delete(target.integration_id)
        return Applied(DUPLICATE)
    reason = revoked_reason(removal.reason)
    now = clock.now()
    stamp = clock.iso(now)
    condition = Integration.integration_id.exists()
    created = event.envelope.create_time
    if created >= now - REDELIVERY_WINDOW_SECONDS:
        condition &= Integration.connected_at <= clock.iso(created + CLOCK_SKEW_SECONDS)
    try:
        integrations()._get_connection().update_item(
            target.workspace_id,
            range_key=target.integration_id,
            actions=[
                Integration.status.set("revoked"),
                Integration.revoked_reason.set(reason),
                Integration.updated_at.set(stamp),
                Integration.last_event_at.set(stamp),
                Integration.refresh_bucket.remove(),
                Integration.refresh_due_at.remove(),
                Integration.refresh_lease_until.remove(),
                Integration.refresh_lease_owner.remove(),
            ],
            condition=condition,
        )
    except UpdateError as exc:
        if _condition_failed(exc):
            logger.info(
                "authorization removal predates the connection; ignored",
                extra={"integration_id": target.integration_id},
            )
            return Applied(IGNORED)
        raise _transient("revoke integration", exc) from None
    vault.delete(target.integration_id)
    metrics.add_metric(name="IntegrationRevoked", unit=MetricUnit.Count, value=1)
    logger.info(
        "integration revoked by tiktok", extra={"integration_id": target.integration_id, "reason": reason}
    )
    # The revocation wrote last_event_at itself.
    return Applied(ACCEPTED)


def revoked_reason(reason: int) -> str:
    """TikTok's ``authorization.removed`` reason code as the integration's ``revoked_reason``."""
    return REVOKED_REASONS.get(reason, "unknown")


def _stale(last_event_at: str | None, now: float) -> bool:
    """Whether ``last_event_at`` (as the routing index projects it) is due for a rewrite."""
    if not last_event_at:
        return True
    try:
        return now - clock.parse_iso(last_event_at).timestamp() >= LAST_EVENT_RESOLUTION_SECONDS
    except ValueError:
        return True


def _touch(target: Target, now: float) -> None:
    """Record activity on the integration, at most about once a minute (the caller checks the
    value the routing Query projected). Best effort: ``last_event_at`` is bookkeeping and the lead
    is already stored and announced, so a failure here is logged and counted rather than making
    TikTok redeliver."""
    stamp = clock.iso(now)
    try:
        integrations()._get_connection().update_item(
            target.workspace_id,
            range_key=target.integration_id,
            actions=[Integration.last_event_at.set(stamp)],
            # Never resurrect a record a concurrent disconnect deleted, nor touch a revoked one,
            # nor move the time back (a slower concurrent delivery may write after a newer one).
            condition=Integration.integration_id.exists()
            & (Integration.status != "revoked")
            & (Integration.last_event_at.does_not_exist() | (Integration.last_event_at < stamp)),
        )
    except UpdateError as exc:
        if not _condition_failed(exc):
            logger.warning(
                "could not record last_event_at",
                extra={"integration_id": target.integration_id, "aws_error": _aws_code(exc)},
            )
            metrics.add_metric(name="LastEventUpdateFailed", unit=MetricUnit.Count, value=1)


def _targets(open_id: str) -> list[Target]:
    """Every integration of the TikTok account, any workspace (one Query on ``by_open_id``, paged
    only when one account is connected to more workspaces than a page holds).

    Read with the table's client and a request written once (``_ROUTE_QUERY``): this runs on every
    delivery, and building PynamoDB models of the projected items would cost more than the rest of
    the routing."""
    model = integrations()
    client: Any = model._get_connection().connection.client
    request: dict[str, Any] = {
        "TableName": model.Meta.table_name,
        **_ROUTE_QUERY,
        "ExpressionAttributeValues": {":open_id": {"S": open_id}},
    }
    targets: list[Target] = []
    try:
        while True:
            page = client.query(**request)
            targets.extend(_target(item) for item in page.get("Items", ()))
            if "LastEvaluatedKey" not in page:
                return targets
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except (ClientError, BotoCoreError) as exc:
        raise _transient("route event", exc) from None


_ROUTE_QUERY = {
    "IndexName": Integration.by_open_id.Meta.index_name,
    "KeyConditionExpression": "#open_id = :open_id",
    "ExpressionAttributeNames": {"#open_id": Integration.open_id.attr_name},
}


def _target(item: dict[str, Any]) -> Target:
    def text(attribute: Any) -> str | None:
        value = item.get(attribute.attr_name)
        return value.get("S") if isinstance(value, dict) else None

    return Target(
        # An index item always carries the table's keys.
        workspace_id=item[Integration.workspace_id.attr_name]["S"],
        integration_id=item[Integration.integration_id.attr_name]["S"],
        # A record without a status is not one the webhook may write leads for.
        status=text(Integration.status) or "revoked",
        last_event_at=text(Integration.last_event_at),
    )


def _credentials() -> AppCredentials:
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        return app_credentials()
    except GetParameterError:
        logger.warning("could not read the TikTok app credentials")
        raise TransientError("The app credentials are unavailable, try again") from None


def _condition_failed(exc: PynamoDBException) -> bool:
    # aws.error_code, not cause_response_code: the latter raises on a botocore timeout.
    return aws.error_code(exc) == "ConditionalCheckFailedException"


def _aws_code(exc: Exception) -> str:
    cause = exc.cause if isinstance(exc, PynamoDBException) else exc
    return aws.error_code(exc) or type(cause).__name__


def _transient(action: str, exc: PynamoDBException | ClientError | BotoCoreError) -> TransientError:
    logger.warning("webhook storage call failed", extra={"action": action, "aws_error": _aws_code(exc)})
    return TransientError("The event could not be stored, try again")


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
    _single("WebhookEvents", event_type=event_type, outcome=outcome)
    if error_code is not None:
        _single("WebhookRejected", error_code=error_code)


def _single(name: str, **dimensions: str) -> None:
    with single_metric(
        name=name,
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
        default_dimensions={"service": SERVICE},
    ) as metric:
        for key, value in dimensions.items():
            metric.add_dimension(name=key, value=value)
