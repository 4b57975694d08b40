"""Announcing new leads on the event bus: a pessimistic outbox kept in the lead item itself.

A new lead is written *with* a pending-announcement marker (``announce_pending``, the shard of the
sparse ``by_pending_announcement`` index, and ``announce_due_at``), in the same conditional PutItem
that makes it exist. The marker is removed only after EventBridge has accepted the lead's
``SocialLeadCaptured`` event, so at any moment a lead is either announced or findable as pending:
no crash, timeout or failed publish can lose one.

The marker is also a lease. Until ``announce_due_at`` (``LEASE_MS`` after it was set) the writer
owns the announcement; a concurrent redelivery that finds the lead pending but not due leaves it
alone, so one delivery, however often it arrives at once, is announced once. Once due — the owner
handed it back after a failed publish, or died — whoever finds it first *claims* it with one
conditional UpdateItem that moves ``announce_due_at`` a lease ahead: a TikTok redelivery (which
learns the stored lead from the failed put itself, ``ReturnValuesOnConditionCheckFailure=ALL_OLD``)
or the scheduled sweeper (``announce_overdue``). The claim is exclusive, so neither two
redeliveries nor a redelivery and the sweeper publish the same lead together.

Delivery on the bus is still at least once: a publisher that dies after PutEvents and before it
clears the marker leaves the lead pending, and it is announced again when the lease ends.
Consumers deduplicate on ``detail.lead_id``.

The writes themselves are named operations of ``data.leads``; this module holds the protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import batched, chain
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import bus
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.errors import DomainError, TransientError
from orcapulse_tiktok.models.lead import PENDING_SHARDS, Lead, pending_shard
from orcapulse_tiktok.observability import logger, metrics

SOURCE = "orcapulse.social-leads"
DETAIL_TYPE = "SocialLeadCaptured"
# How long whoever set or claimed a marker owns the announcement. Longer than any invocation that
# can hold one lives (webhook 15 s, sweeper 60 s), so a lease never ends under a live owner; it is
# also the sweeper's grace period: a lead that was never handed back waits this long.
LEASE_MS = 120_000
# The sweeper stops taking leads over when its invocation has less than this left.
SWEEP_BUDGET_MS = 10_000
SWEEP_PAGE_SIZE = 100


def now_ms() -> int:
    """The current time in epoch milliseconds (the unit of ``announce_due_at``)."""
    return int(clock.now() * 1000)


def event_entry(lead: Mapping[str, Any], bus_name: str) -> dict[str, Any]:
    """The PutEvents entry announcing one lead (``lead`` as the API shows it)."""
    return bus.entry(bus_name, SOURCE, DETAIL_TYPE, lead)


# -- the marker ------------------------------------------------------------------------------------
def put_new(lead: Lead, *, now: int) -> Lead | None:
    """Store ``lead`` with its pending marker unless a lead with its key exists (one PutItem).

    Returns ``None`` when it was created — the caller then owns its announcement for ``LEASE_MS``
    — or the lead already stored."""
    lead.announce_pending = pending_shard(lead.lead_id)
    lead.announce_due_at = now + LEASE_MS
    return lead_store.put_new_lead(lead)


def is_due(lead: Lead, now: int) -> bool:
    """Whether ``lead`` is pending and its owner's lease is over, so anyone may take it over."""
    return lead.is_pending and lead.announce_due_at is not None and int(lead.announce_due_at) <= now


def claim(workspace_id: str, lead_id: str, *, now: int) -> Lead | None:
    """Take over the announcement of a pending lead whose lease is over. Returns the lead as stored
    now, or ``None`` when it is no longer pending or someone else holds it."""
    return lead_store.claim_announcement(workspace_id, lead_id, now_ms=now, lease_until_ms=now + LEASE_MS)


def _clear(lead: Lead) -> None:
    """The lead is on the bus: drop its marker. A failure is logged and counted, not raised: the
    lead *is* announced, and the marker left behind only means it is announced again when the
    lease ends."""
    try:
        lead_store.clear_announcement(lead.workspace_id, lead.lead_id)
    except DomainError:
        logger.warning("announced lead still marked pending", extra={"lead_id": lead.lead_id})
        metrics.add_metric(name="LeadAnnounceClearFailed", unit=MetricUnit.Count, value=1)


def _release(lead: Lead, now: int) -> None:
    """Hand a lead whose publish failed back at once (it is due now), so TikTok's redelivery can
    take it over without waiting for the lease to end. Only if the lease is still this caller's;
    best effort, since the lease ends by itself anyway."""
    try:
        released = lead_store.release_announcement(
            lead.workspace_id, lead.lead_id, held_until_ms=int(lead.announce_due_at or 0), now_ms=now
        )
    except DomainError:
        released = False
    if not released:
        logger.info("pending lead left to its lease", extra={"lead_id": lead.lead_id})


# -- publishing ------------------------------------------------------------------------------------
def publish(pending: Sequence[Lead]) -> tuple[list[Lead], list[Lead]]:
    """Put one ``SocialLeadCaptured`` per lead on the bus.

    Returns ``(published, refused)``: the leads EventBridge accepted, and those it refused or
    never saw (a failed call). Raises only for a configuration fault (``data.bus``)."""
    bus_name = get_settings().require("event_bus_name")
    accepted = bus.put_events([event_entry(lead.to_public(), bus_name) for lead in pending])
    published = [lead for lead, ok in zip(pending, accepted, strict=True) if ok]
    refused = [lead for lead, ok in zip(pending, accepted, strict=True) if not ok]
    if published:
        metrics.add_metric(name="LeadsAnnounced", unit=MetricUnit.Count, value=len(published))
    if refused:
        metrics.add_metric(name="LeadAnnounceFailed", unit=MetricUnit.Count, value=len(refused))
    return published, refused


def announce_owned(owned: Sequence[Lead]) -> None:
    """Publish leads whose announcement the caller owns (it created or claimed them), clear the
    markers of those that went out and hand the others back. Raises ``TransientError`` when any
    did not go out, so the webhook answers 503 and TikTok redelivers."""
    published, refused = publish(owned)
    for lead in published:
        _clear(lead)
    if refused:
        now = now_ms()
        for lead in refused:
            _release(lead, now)
        raise TransientError("The new lead could not be announced, try again")


# -- the backstop ----------------------------------------------------------------------------------
class SweepReport:
    """What one sweeper run did. ``failed`` lists lead ids (retried by the next run)."""

    __slots__ = ("announced", "deferred", "failed", "overdue", "skipped")

    def __init__(self) -> None:
        self.overdue = 0
        self.announced = 0
        self.skipped = 0  # announced or taken over by someone else meanwhile
        self.failed: list[str] = []
        self.deferred = False  # stopped for time; the rest waits for the next run

    def to_dict(self) -> dict[str, Any]:
        return {
            "overdue": self.overdue,
            "announced": self.announced,
            "skipped": self.skipped,
            "failed": list(self.failed),
            "deferred": self.deferred,
        }


def announce_overdue(*, time_left_ms: Callable[[], int] | None = None) -> SweepReport:
    """Announce every lead whose announcement is overdue: still pending after its writer's lease
    (``LEASE_MS``) or handed back after a failed publish, and not announced by a TikTok redelivery
    since. One Query per shard of the sparse ``by_pending_announcement`` index (never a Scan); each
    lead is claimed before it is published, so a webhook handling the same lead at the same moment
    never announces it too. A lead that cannot be announced stays pending for the next run."""
    report = SweepReport()
    started = now_ms()
    overdue: Iterable[tuple[str, str]] = chain.from_iterable(
        lead_store.overdue_announcements(shard, due_by_ms=started, page_size=SWEEP_PAGE_SIZE)
        for shard in PENDING_SHARDS
    )
    try:
        for batch in batched(overdue, bus.MAX_ENTRIES_PER_CALL):
            if time_left_ms is not None and time_left_ms() < SWEEP_BUDGET_MS:
                report.deferred = True
                break
            _sweep(batch, started, report)
    except DomainError:
        logger.error("pending announcements could not be read", extra={"report": report.to_dict()})
        raise
    finally:
        if report.failed:
            metrics.add_metric(name="LateAnnounceFailed", unit=MetricUnit.Count, value=len(report.failed))
    logger.info("announcement sweep finished", extra={"report": report.to_dict()})
    return report


def _sweep(batch: Sequence[tuple[str, str]], now: int, report: SweepReport) -> None:
    report.overdue += len(batch)
    claimed: list[Lead] = []
    for workspace_id, lead_id in batch:
        try:
            lead = claim(workspace_id, lead_id, now=now)
        except DomainError:
            logger.warning("overdue lead could not be claimed", extra={"lead_id": lead_id})
            report.failed.append(lead_id)
            continue
        if lead is None:
            report.skipped += 1
        else:
            claimed.append(lead)
    if not claimed:
        return
    published, refused = publish(claimed)
    # A refused lead keeps its new lease, which ends before the next run: nothing to hand back.
    for lead in published:
        _clear(lead)
        _count_late(lead, now)
    report.announced += len(published)
    report.failed.extend(lead.lead_id for lead in refused)
    if published:
        logger.info("overdue leads announced", extra={"lead_ids": [lead.lead_id for lead in published]})


def _count_late(lead: Lead, now: int) -> None:
    metrics.add_metric(name="LeadsAnnouncedLate", unit=MetricUnit.Count, value=1)
    try:
        created = clock.parse_iso(lead.created_at).timestamp()
    except (TypeError, ValueError):
        return
    delay = max(0.0, now / 1000 - created)
    metrics.add_metric(name="LeadAnnounceDelay", unit=MetricUnit.Seconds, value=round(delay, 3))
