"""Catch-up for business accounts: comments and DMs TikTok's webhook never delivered become leads.

Per active business integration (the sparse ``by_catchup`` index, never a Scan), one run lists the
account's newest videos (``business/video/list/``) and, for each, its comments newest first
(``business/comment/list/``), and its newest conversations (``business/message/conversation/list/``
of both kinds) with their messages (``business/message/content/list/``), down to the integration's
watermark less an overlap. Each comment or message is turned into the very ``comment.update`` or
``im_receive_msg`` delivery TikTok would have sent — same envelope, parsed by the webhook's own
parser — and handed to ``capture.capture``: lead ids are the webhook's deterministic ones, so what
the webhook already captured, a late webhook, or a second run adds nothing (``duplicate``). A
comment the list shows ``HIDDEN`` is also replayed as its ``set_to_hidden`` action, timed at the
comment's creation, so a newer hide/unhide webhook always wins.

Bounded per run: ``MAX_VIDEOS`` videos and ``MAX_PAGES`` comment pages per video, and
``MAX_CONVERSATIONS`` conversations of each kind, per integration; an integration is started only
while ``ITEM_BUDGET_MS`` of the invocation remain. A rate-limit answer (after the client's own
backoff) ends the run: the rest is deferred to the next one. An account TikTok refuses the message
lists for (no Business Messaging, an account in the EEA, Switzerland or the UK) has its comments
caught up all the same. The watermark moves only when an integration was caught up completely.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock, tokens
from orcapulse_tiktok.capture import ACCEPTED, DUPLICATE, capture
from orcapulse_tiktok.data import catchup as catchup_store
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.data.integrations import Key
from orcapulse_tiktok.errors import BadRequest, DomainError
from orcapulse_tiktok.models.integration import Integration
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.tiktok import events
from orcapulse_tiktok.tiktok.accounts import BUSINESS
from orcapulse_tiktok.tiktok.business_answers import RATE_LIMIT_CODES
from orcapulse_tiktok.tiktok.business_client import BusinessClient, business_client
from orcapulse_tiktok.tiktok.client import TikTokError, TikTokRequestError
from orcapulse_tiktok.tiktok.credentials import business_app_credentials

MAX_VIDEOS = 10
MAX_PAGES = 3  # of 30 comments, per video
ITEM_BUDGET_MS = 30_000
# First run of an integration: this far back (TikTok retries webhooks for 72 h; 48 h of comments
# covers a missed day with margin).
FIRST_LOOKBACK_SECONDS = 48 * 3600
# Comments can become listable a little after their create_time: re-read this much before the
# watermark (re-reading is free of effects: those leads answer duplicate).
OVERLAP_SECONDS = 15 * 60
PAGE_SIZE = 25
MAX_CONVERSATIONS = 10  # of each kind, newest first, per integration
CONVERSATION_KINDS = ("STRANGER", "SINGLE")  # not answered yet / answered (the docs' only two)


class RateLimited(Exception):
    """TikTok is rate-limiting the Business app: stop the run, the next one continues."""


@dataclass
class CatchupReport:
    """What one run did; ``failed`` lists integration ids (never tokens)."""

    integrations: int = 0
    comments_seen: int = 0
    messages_seen: int = 0
    hidden: int = 0
    leads_created: int = 0
    duplicates: int = 0
    skipped: int = 0
    deferred: int = 0
    rate_limited: bool = False
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "integrations": self.integrations,
            "comments_seen": self.comments_seen,
            "messages_seen": self.messages_seen,
            "hidden": self.hidden,
            "leads_created": self.leads_created,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "deferred": self.deferred,
            "rate_limited": self.rate_limited,
            "failed": list(self.failed),
        }


def comment_event(
    business_id: str, app_id: str, comment: dict[str, Any], action: str = "insert"
) -> events.WebhookEvent | None:
    """The ``comment.update`` delivery (``action`` insert, or set_to_hidden) TikTok sends for
    ``comment`` (an item of ``business/comment/list/``), parsed by the webhook's parser; ``None``
    for an item without the ids or time an event needs."""
    comment_id, video_id = comment.get("comment_id"), comment.get("video_id")
    created = comment.get("create_time")
    created = int(created) if isinstance(created, str) and created.isdigit() else created
    if not comment_id or not video_id or not isinstance(created, int) or isinstance(created, bool):
        return None
    parent = comment.get("parent_comment_id")
    content = {
        "comment_id": comment_id,
        "video_id": video_id,
        # As in TikTok's comment.update: a top-level comment's parent is the video.
        "parent_comment_id": parent or video_id,
        "comment_type": "reply" if parent else "comment",
        "comment_action": action,
        "text": comment.get("text") if isinstance(comment.get("text"), str) else None,
        "timestamp": created * 1000,
        # The commenter's global identifier, "consistent across APIs" per the comment list docs:
        # the same person key as the webhook's.
        "unique_identifier": comment.get("unique_identifier") or comment.get("username"),
    }
    return _parsed(events.COMMENT_UPDATE, business_id, app_id, created, content)


def message_event(business_id: str, app_id: str, message: dict[str, Any]) -> events.WebhookEvent | None:
    """The ``im_receive_msg`` delivery TikTok sends for ``message`` (an item of
    ``business/message/content/list/``) when a person wrote it; ``None`` for the business's own
    messages and for items without the ids or time an event needs. The list's ``sender`` is the
    webhook's ``from`` (the person's handle) and its ``from_user``/``to_user`` the same participant
    objects, so the person and the interaction ids are the webhook's."""
    sender, receiver = message.get("from_user"), message.get("to_user")
    sent = message.get("timestamp")
    if not isinstance(sender, dict) or sender.get("role") != "PERSONAL_ACCOUNT":
        return None
    if not isinstance(sent, int) or isinstance(sent, bool) or not message.get("message_id"):
        return None
    text = message.get("text")
    content = {
        "conversation_id": message.get("conversation_id"),
        "message_id": message.get("message_id"),
        "timestamp": sent,
        "type": str(message.get("message_type") or "").lower() or None,
        "text": text if isinstance(text, dict) else None,
        "from": message.get("sender"),
        "from_user": {"id": sender.get("id")},
        "to": message.get("recipient"),
        "to_user": {"id": receiver.get("id") if isinstance(receiver, dict) else business_id},
    }
    return _parsed(events.MESSAGE_RECEIVED, business_id, app_id, sent // 1000, content)


def _parsed(
    event: str, business_id: str, app_id: str, created: int, content: dict[str, Any]
) -> events.WebhookEvent | None:
    envelope = events.Envelope(
        client_key=app_id,
        event=event,
        create_time=created,
        user_openid=business_id,
        content=json.dumps(content),
    )
    try:
        return events.parse_event(envelope)
    except BadRequest:
        return None


def _captured(event: events.WebhookEvent, report: CatchupReport) -> None:
    outcome = capture(event)
    report.leads_created += outcome == ACCEPTED
    report.duplicates += outcome == DUPLICATE


def catch_up_integration(
    record: Integration, client: BusinessClient, app_id: str, report: CatchupReport
) -> None:
    """Catch one business integration up; moves its watermark when done."""
    token = tokens.access_token(record)
    business_id = record.open_id
    now = int(clock.now())
    watermark = int(record.catchup_watermark or now - FIRST_LOOKBACK_SECONDS)
    since = watermark - OVERLAP_SECONDS
    newest = watermark
    for video in client.videos(token, business_id, max_count=MAX_VIDEOS).items[:MAX_VIDEOS]:
        video_id = video.get("item_id")
        if not isinstance(video_id, str | int) or isinstance(video_id, bool):
            continue
        cursor: int | None = None
        for _ in range(MAX_PAGES):
            page = client.comments(token, business_id, str(video_id), cursor=cursor)
            reached_old = False
            for item in page.items:
                event = comment_event(business_id, app_id, item)
                if event is None:
                    continue
                created = event.envelope.create_time
                if created < since:
                    reached_old = True
                    continue
                report.comments_seen += 1
                _captured(event, report)
                if item.get("status") == "HIDDEN":  # hidden by the account: what set_to_hidden does
                    hidden = comment_event(business_id, app_id, item, "set_to_hidden")
                    report.hidden += hidden is not None and capture(hidden) == ACCEPTED
                newest = max(newest, created)
            if reached_old or not page.has_more or page.cursor is None:
                break
            cursor = page.cursor
    newest = max(newest, _catch_up_messages(client, token, business_id, app_id, since, report))
    catchup_store.record_catchup(
        (record.workspace_id, record.integration_id), watermark=min(newest, now), stamp=clock.iso(now)
    )


def _catch_up_messages(
    client: BusinessClient, token: str, business_id: str, app_id: str, since: int, report: CatchupReport
) -> int:
    """DMs of the newest conversations of each kind since ``since``; the newest message time seen
    (epoch seconds, 0 for none). TikTok refusing the lists (other than a rate limit) skips DMs."""
    newest = 0
    try:
        for kind in CONVERSATION_KINDS:
            for conversation in client.conversations(token, business_id, kind, limit=MAX_CONVERSATIONS).items:
                up_time, conversation_id = conversation.get("up_time"), conversation.get("conversation_id")
                if (
                    not isinstance(up_time, int)
                    or up_time < since * 1000
                    or not isinstance(conversation_id, str)
                ):
                    continue
                for message in client.messages(token, business_id, conversation_id).items:
                    event = message_event(business_id, app_id, message)
                    if event is None or event.envelope.create_time < since:
                        continue
                    report.messages_seen += 1
                    _captured(event, report)
                    newest = max(newest, event.envelope.create_time)
    except TikTokRequestError as exc:  # refused (no permission, ...): rate limits and dead tokens go on up
        logger.warning(
            "business catch-up skipped direct messages",
            extra={"business_catchup": "messages", "tiktok_error": exc.code, "tiktok_log_id": exc.log_id},
        )
    return newest


def _one(key: Key, client: BusinessClient, app_id: str, report: CatchupReport) -> None:
    record = integration_store.get(*key)
    if record is None:
        report.skipped += 1
        return
    if record.status != "active" or record.account_type != BUSINESS:
        report.skipped += 1
        catchup_store.drop_from_catchup(key)
        return
    try:
        catch_up_integration(record, client, app_id, report)
    except TikTokError as exc:
        logger.warning(
            "business catch-up failed",
            extra={"integration_id": key[1], "tiktok_error": exc.code, "tiktok_log_id": exc.log_id},
        )
        if exc.code.isdigit() and int(exc.code) in RATE_LIMIT_CODES:
            raise RateLimited() from None
        report.failed.append(key[1])
        return
    report.integrations += 1


def catch_up(*, time_left_ms: Callable[[], int] | None = None) -> CatchupReport:
    """Catch every active business integration up (one at a time: each is a handful of calls, and
    TikTok's rate limits are per app). One integration's failure never stops the others."""
    report = CatchupReport()
    client = business_client()
    app_id = business_app_credentials().client_key
    keys = catchup_store.catchup_targets(page_size=PAGE_SIZE)
    try:
        for key in keys:
            if time_left_ms is not None and time_left_ms() < ITEM_BUDGET_MS:
                report.deferred += 1
                continue
            try:
                _one(key, client, app_id, report)
            except tokens.ReauthRequired:
                report.skipped += 1
            except RateLimited:
                metrics.add_metric(name="BusinessCatchupRateLimited", unit=MetricUnit.Count, value=1)
                # The rest of the index is left unread: the next run starts over anyway.
                report.rate_limited = True
                report.deferred += 1
                break
            except DomainError as exc:
                logger.warning(
                    "business catch-up failed", extra={"integration_id": key[1], "error_code": exc.code}
                )
                report.failed.append(key[1])
    finally:
        metrics.add_metric(
            name="BusinessCatchupLeadsCreated", unit=MetricUnit.Count, value=report.leads_created
        )
        metrics.add_metric(name="BusinessCatchupFailures", unit=MetricUnit.Count, value=len(report.failed))
    logger.info("business catch-up run finished", extra={"report": report.to_dict()})
    return report
