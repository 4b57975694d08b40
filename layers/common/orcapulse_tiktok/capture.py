"""Verified TikTok events become social leads (live mode).

An event is routed to every integration of its ``user_openid`` (one TikTok account may be connected
by several workspaces):

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

from collections.abc import Callable, Iterable
from typing import NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import announce, clock
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.data.integrations import Target
from orcapulse_tiktok.errors import DomainError, TransientError
from orcapulse_tiktok.models.lead import Author, Lead, lead_id_for, leads
from orcapulse_tiktok.observability import logger, metrics
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


class Applied(NamedTuple):
    """What an event did to one integration: the outcome, the lead whose announcement this
    delivery now owns (created, or taken over from a failed attempt), and when the integration saw
    activity (for ``last_event_at``; ``None`` when the event changed nothing)."""

    outcome: str
    owned: Lead | None = None
    active_at: float | None = None
    created: str | None = None  # the id of the lead this event created


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
    targets = integration_store.route(event.envelope.user_openid)
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
    and record activity. A failure of one target does not stop the others, nor the announcement
    of what they created; it is re-raised at the end (a configuration fault before a transient
    one) so TikTok redelivers (the ones already done answer duplicate)."""
    if not targets:
        logger.info("webhook event ignored", extra={"event_type": event.type, "reason": "unknown_account"})
        return IGNORED
    applied: list[tuple[Target, Applied]] = []
    failed: DomainError | None = None
    for target in targets:
        try:
            applied.append((target, action(target)))
        except DomainError as exc:
            failed = _worse(failed, exc)
    owned = [a.owned for _, a in applied if a.owned is not None]
    if owned:
        try:
            announce.announce_owned(owned)
        except DomainError as exc:
            failed = _worse(failed, exc)
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


def _worse(first: DomainError | None, second: DomainError) -> DomainError:
    # A configuration fault is what an operator must see; a transient one only asks for a retry.
    if first is None or (isinstance(first, TransientError) and not isinstance(second, TransientError)):
        return second
    return first


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
    existing = announce.put_new(lead, now=now_ms)
    if existing is not None:
        if high_intent:
            # TikTok flagged a comment that already made a lead: flag the lead (idempotent).
            lead_store.flag_high_intent(lead.workspace_id, lead.lead_id)
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
    claimed = announce.claim(existing.workspace_id, existing.lead_id, now=now_ms)
    if claimed is not None:
        logger.info("completing a pending lead announcement", extra={"lead_id": claimed.lead_id})
    return claimed


def _set_source_state(event: WebhookEvent, target: Target, comment_id: str, state: str) -> Applied:
    """Record that the comment behind a lead was deleted, hidden or made public again.

    One conditional UpdateItem: no lead for the comment, or a newer action already applied, is
    ``ignored``; the same state again is ``duplicate``."""
    before = lead_store.set_source_state(
        target.workspace_id,
        lead_id_for(target.integration_id, f"comment:{comment_id}"),
        state,
        at_ms=event.occurred_ms(),
    )
    if before is None:
        return Applied(IGNORED)
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
    created = event.envelope.create_time
    revoked = integration_store.mark_revoked(
        target.workspace_id,
        target.integration_id,
        reason=reason,
        stamp=stamp,
        connected_by_then=(
            clock.iso(created + CLOCK_SKEW_SECONDS) if created >= now - REDELIVERY_WINDOW_SECONDS else None
        ),
    )
    if not revoked:
        logger.info(
            "authorization removal predates the connection; ignored",
            extra={"integration_id": target.integration_id},
        )
        return Applied(IGNORED)
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
    try:
        integration_store.touch_last_event(target.workspace_id, target.integration_id, clock.iso(now))
    except DomainError:
        logger.warning("could not record last_event_at", extra={"integration_id": target.integration_id})
        metrics.add_metric(name="LastEventUpdateFailed", unit=MetricUnit.Count, value=1)
