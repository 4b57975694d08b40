"""The scheduled token refresh: every integration whose access token is due, in bounded parallel
batches, each refreshed under its lease by the token service (``tokens``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import batched
from typing import Any, Literal

from orcapulse_tiktok import clock, tokens
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.data.integrations import Key
from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.observability import logger

# Batch size, parallel refreshes, and the time one refresh may need at most (a refresh cut off by
# the Lambda timeout could rotate a token and never store it).
BATCH_SIZE = 20
WORKERS = 4
ITEM_BUDGET_MS = 12_000

Outcome = Literal["refreshed", "fresh", "needs_reauth", "failed", "busy", "skipped", "deferred"]


@dataclass
class RefreshReport:
    """What one scheduled run did. ``failed`` lists integration ids (never tokens)."""

    processed: int = 0
    refreshed: int = 0
    needs_reauth: int = 0
    skipped: int = 0
    deferred: int = 0
    failed: list[str] = field(default_factory=list)

    def add(self, integration_id: str, outcome: Outcome) -> None:
        self.processed += 1
        if outcome == "refreshed":
            self.refreshed += 1
        elif outcome == "needs_reauth":
            self.needs_reauth += 1
        elif outcome == "failed":
            self.failed.append(integration_id)
        elif outcome == "deferred":
            self.deferred += 1
        else:
            self.skipped += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "processed": self.processed,
            "refreshed": self.refreshed,
            "needs_reauth": self.needs_reauth,
            "skipped": self.skipped,
            "deferred": self.deferred,
            "failed": list(self.failed),
        }


def refresh_integration(
    workspace_id: str, integration_id: str, *, sleep: tokens.Sleep | None = None
) -> Outcome:
    """Refresh one integration if it is due; the scheduled run's unit of work. Never waits for a
    lease another worker holds (``busy``), and reports failures as ``failed``."""
    try:
        record = integration_store.get(workspace_id, integration_id)
        if record is None:
            return "skipped"
        if record.status != "active":
            _drop_from_schedule((workspace_id, integration_id))
            return "skipped"
        now = clock.now()
        # The index is eventually consistent: trust the record's own due time.
        if record.refresh_due_at is not None and int(record.refresh_due_at) > now:
            return "fresh"
        lease = tokens.take_lease(record, now)
        if lease is None:
            return "busy"
        _, refreshed = tokens.refresh_locked(
            lease, lambda t, at: tokens.refresh_due_at(t) <= at, sleep or time.sleep
        )
    except tokens.ReauthRequired:
        return "needs_reauth"
    except DomainError:
        return "failed"
    return "refreshed" if refreshed else "fresh"


def _drop_from_schedule(key: Key) -> None:
    # A non-active integration still in the index (revoked by a webhook, say) needs no refresh;
    # best effort: the next run finds it again.
    try:
        integration_store.drop_from_refresh_schedule(key)
    except DomainError:
        logger.info("integration left in the refresh schedule", extra={"integration_id": key[1]})


def refresh_due_tokens(*, time_left_ms: Callable[[], int] | None = None) -> RefreshReport:
    """Refresh every integration whose access token is due (Query on the sparse ``by_refresh_due``
    index, never a Scan), in bounded parallel batches. One integration's failure never stops the
    others; integrations left when time runs short are ``deferred`` to the next run."""
    report = RefreshReport()
    keys = integration_store.refresh_due(int(clock.now()), page_size=BATCH_SIZE)

    def work(key: Key) -> tuple[str, Outcome]:
        if time_left_ms is not None and time_left_ms() < ITEM_BUDGET_MS:
            return key[1], "deferred"
        try:
            return key[1], refresh_integration(*key)
        except Exception as exc:  # one integration's bug must not stop the run
            logger.error(
                "token refresh crashed", extra={"integration_id": key[1], "error_type": type(exc).__name__}
            )
            return key[1], "failed"

    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for batch in batched(keys, BATCH_SIZE):
                for integration_id, outcome in pool.map(work, batch):
                    report.add(integration_id, outcome)
                if time_left_ms is not None and time_left_ms() < ITEM_BUDGET_MS:
                    break
    except DomainError:
        logger.error("refresh schedule query failed", extra={"report": report.to_dict()})
        raise
    finally:
        tokens.count("TokenRefreshDue", report.processed)
        tokens.count("TokenRefreshRunFailures", len(report.failed))
    logger.info("token refresh run finished", extra={"report": report.to_dict()})
    return report
