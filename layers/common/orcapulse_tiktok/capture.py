"""Verified TikTok events become interactions of social leads (live mode).

An event is routed to every integration of its ``user_openid`` (one TikTok account may be connected
by several workspaces):

- comment, high-intent comment and message events become an interaction on the lead of the person
  who wrote them (``interactions.py``: one interaction per TikTok object however often delivered,
  one lead per person);
- comment delete/hide/unhide changes that comment's interaction's ``source_state``;
- ``authorization.removed`` revokes the integration and deletes its dead token secret.

A transient AWS failure is a 503 so TikTok retries; every step is idempotent, so the retry
finishes what the first attempt started. New leads and interactions are announced from the
table's stream, not from here (``announce.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock, people
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.data import merges as merge_store
from orcapulse_tiktok.data.integrations import Target
from orcapulse_tiktok.errors import DomainError, TransientError
from orcapulse_tiktok.interactions import Capture, record
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
    """What an event did to one integration: the outcome, when the integration saw activity (for
    ``last_event_at``; ``None`` when the event changed nothing), and the lead it created."""

    outcome: str
    active_at: float | None = None
    created: str | None = None


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
    """Run ``action`` for every target and record activity. A failure of one target does not stop the others, nor the announcement
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
            return _record(_comment(event, target, payload, high_intent=False))
        state = SOURCE_STATES.get(payload.action)
        if state is None:
            return Applied(IGNORED)
        return _set_source_state(event, target, payload, state)
    if isinstance(payload, MessageReceived):
        return _record(_message(event, target, payload))
    if isinstance(payload, HighIntentComment):
        return _record(_comment(event, target, payload, high_intent=True))
    return Applied(IGNORED)


def _record(capture: Capture) -> Applied:
    result = record(capture)
    if result.outcome in (DUPLICATE, IGNORED):  # ignored: older than its person's erasure
        return Applied(result.outcome)
    return Applied(ACCEPTED, active_at=clock.now(), created=result.created_lead)


def _commenter(comment: CommentUpdate | HighIntentComment) -> str:
    # unique_identifier is the only commenter identity TikTok documents for comment events.
    if comment.unique_identifier:
        return people.handle_key(comment.unique_identifier)
    if comment.user_id:
        return people.user_id_key(comment.user_id)
    return people.object_key("comment", comment.comment_id)


def _comment(
    event: WebhookEvent, target: Target, comment: CommentUpdate | HighIntentComment, *, high_intent: bool
) -> Capture:
    """A new comment, or TikTok's high-intent flag on one: both are keyed by the comment, so the
    flag lands on the comment's interaction whichever event arrives first."""
    parent = comment.parent_comment_id if isinstance(comment, CommentUpdate) else None
    source_ref = {"video_id": comment.video_id, "comment_id": comment.comment_id, "parent_comment_id": parent}
    return Capture(
        integration_id=target.integration_id,
        workspace_id=target.workspace_id,
        kind="high_intent_comment" if high_intent else "comment",
        capture_source="tiktok_comment",
        person_key=_commenter(comment),
        object_key=f"comment:{comment.comment_id}",
        occurred_ms=event.occurred_ms(),
        message=comment.text or "",
        source_ref={k: v for k, v in source_ref.items() if v is not None},
        author={"id": comment.user_id or comment.unique_identifier, "username": comment.unique_identifier},
        high_intent=high_intent,
    )


def _message(event: WebhookEvent, target: Target, message: MessageReceived) -> Capture:
    if message.from_username:
        person = people.handle_key(message.from_username)
    elif message.from_user_id:
        person = people.user_id_key(message.from_user_id)
    else:
        # No sender at all: the conversation is the person (all its DMs are one lead).
        person = people.object_key("conversation", message.conversation_id or message.message_id)
    source_ref = {"conversation_id": message.conversation_id, "message_id": message.message_id}
    return Capture(
        integration_id=target.integration_id,
        workspace_id=target.workspace_id,
        kind="dm",
        capture_source="tiktok_dm",
        person_key=person,
        object_key=f"dm:{message.message_id}",
        occurred_ms=event.occurred_ms(),
        message=message.text or "",
        source_ref={k: v for k, v in source_ref.items() if v is not None},
        author={"id": message.from_user_id, "username": message.from_username},
    )


def _set_source_state(event: WebhookEvent, target: Target, comment: CommentUpdate, state: str) -> Applied:
    """Record that a comment was deleted, hidden or made public again, on its interaction (one
    conditional UpdateItem): no interaction for it, or a newer action already applied, is
    ``ignored``; the same state again is ``duplicate``."""
    lead_id = people.lead_id_for(target.integration_id, _commenter(comment))
    interaction_id = people.interaction_id_for(target.integration_id, f"comment:{comment.comment_id}")
    before = lead_store.set_interaction_state(lead_id, interaction_id, state, at_ms=event.occurred_ms())
    if before is None and (moved := merge_store.moved_to(lead_id, interaction_id)) is not None:
        # The commenter's lead was merged: the interaction lives on the lead it moved to.
        lead_id = moved
        before = lead_store.set_interaction_state(lead_id, interaction_id, state, at_ms=event.occurred_ms())
    if before is None:
        return Applied(IGNORED)
    if before == state:
        return Applied(DUPLICATE)
    lead_store.set_first_state(lead_id, interaction_id, state)
    logger.info(
        "interaction source state changed", extra={"integration_id": target.integration_id, "state": state}
    )
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
