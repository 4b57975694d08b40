"""The token service: every caller that needs a TikTok access token goes through here.

TikTok access tokens live hours and refresh tokens rotate (a used refresh token is dead), so a
refresh must never run twice at once for one integration — not even in two Lambda containers —
and the new pair must be in the vault before anything uses it. The rules:

- The vault (Secrets Manager) is the truth for tokens; the integration record only keeps the
  bookkeeping that drives the schedule (expiry times, ``refresh_due_at``, failure count, lease).
- A refresh happens only under a short lease taken by a conditional UpdateItem on the record.
  The holder re-reads the vault (another worker may have refreshed already), refreshes at TikTok,
  stores the new pair *first*, then updates the record and releases the lease. A crash between the
  two writes is harmless: the next reader finds the fresh pair in the vault.
- ``invalid_grant`` or a refresh token past its expiry means the user must reconnect: the
  integration becomes ``needs_reauth`` and leaves the refresh schedule. Timeouts, 429 and 5xx keep
  the old tokens, count a failure and back off.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Literal

from pynamodb.exceptions import DoesNotExist, GetError, PynamoDBException, UpdateError

from orcapulse_tiktok import aws, clock, vault
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import DomainError, TransientError
from orcapulse_tiktok.models.integration import REFRESH_BUCKET, Integration, integrations
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.tiktok.client import TikTokError, TikTokGrantError, TokenGrant, tiktok_client
from orcapulse_tiktok.tiktok.credentials import app_credentials

# A lease outlives the slowest refresh (TikTok connect + read timeouts, two vault writes) so that a
# holder never loses it mid-refresh, yet a crashed holder blocks the integration only briefly.
LEASE_SECONDS = 30
# An access token handed to a caller must stay valid for the call it is used in.
MIN_VALIDITY_SECONDS = 300
# A caller that finds the lease taken waits this long in total for the holder's result.
LEASE_WAIT_ATTEMPTS = 6
LEASE_WAIT_SECONDS = 0.5
# Transient failures push the next scheduled attempt out: 5 min, 10, 20, ... capped at 2 h.
BACKOFF_BASE_SECONDS = 300
BACKOFF_CAP_SECONDS = 7200
# Losing a rotated refresh token loses the grant, so its vault write gets a few tries.
STORE_ATTEMPTS = 3
STORE_RETRY_SECONDS = 0.2
# The scheduled run: batch size, parallel refreshes, and the time one refresh may need at most
# (a refresh cut off by the Lambda timeout could rotate a token and never store it).
BATCH_SIZE = 20
WORKERS = 4
ITEM_BUDGET_MS = 12_000

Sleep = Callable[[float], None]
Outcome = Literal["refreshed", "fresh", "needs_reauth", "failed", "busy", "skipped", "deferred"]


class ReauthRequired(DomainError):
    """The integration's grant is dead (or the integration is not active): the user must reconnect."""

    status = 409
    code = "integration_needs_reauth"


_metrics_lock = threading.Lock()


def _count(name: str, value: int = 1) -> None:
    # Powertools' metric set is a plain dict; the scheduled run adds to it from worker threads.
    with _metrics_lock:
        metrics.add_metric(name=name, unit="Count", value=value)


# -- freshness --------------------------------------------------------------------------------------
def refresh_due_at(tokens: vault.StoredTokens) -> int:
    """When the scheduled refresher should renew these tokens (``TOKEN_REFRESH_MARGIN_SECONDS``
    before they expire; see ``StoredTokens.refresh_due_at``). The OAuth callback applies the same."""
    return tokens.refresh_due_at(get_settings().refresh_margin_seconds)


def _usable(tokens: vault.StoredTokens, now: float) -> bool:
    lifetime = tokens.lifetime
    min_validity = MIN_VALIDITY_SECONDS if lifetime is None else min(MIN_VALIDITY_SECONDS, lifetime // 2)
    return tokens.access_expires_at - now > min_validity


def _backoff(failures: int) -> int:
    return int(min(BACKOFF_BASE_SECONDS * 2 ** max(failures - 1, 0), BACKOFF_CAP_SECONDS))


# -- the lease --------------------------------------------------------------------------------------
@dataclass
class _Lease:
    record: Integration  # the record as it was when the lease was taken (UpdateItem ALL_NEW)
    owner: str
    open: bool = True


def _take_lease(workspace_id: str, integration_id: str, now: float) -> _Lease | None:
    """Take the integration's refresh lease, or ``None`` when another worker holds it or the
    integration is not active (or gone)."""
    record = integrations()(workspace_id, integration_id)
    owner = uuid.uuid4().hex
    try:
        record.update(
            actions=[
                Integration.refresh_lease_owner.set(owner),
                Integration.refresh_lease_until.set(int(now) + LEASE_SECONDS),
            ],
            condition=(Integration.status == "active")
            & (
                Integration.refresh_lease_until.does_not_exist()
                | (Integration.refresh_lease_until < int(now))
            ),
        )
    except UpdateError as exc:
        if aws.error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise TransientError("Could not update the integration, try again") from exc
    return _Lease(record=record, owner=owner)


def _finish(lease: _Lease, actions: list[Any], *, extra_condition: Any = None) -> bool:
    """Apply ``actions`` and release the lease in one write, only while this worker still owns it.

    A failed write is logged, never raised: the tokens are already safe in the vault, and the lease
    expires on its own."""
    lease.open = False
    condition = Integration.refresh_lease_owner == lease.owner
    if extra_condition is not None:
        condition = condition & extra_condition
    try:
        lease.record.update(
            actions=[
                *actions,
                Integration.refresh_lease_owner.remove(),
                Integration.refresh_lease_until.remove(),
            ],
            condition=condition,
        )
        return True
    except PynamoDBException as exc:
        logger.warning(
            "integration bookkeeping not written",
            extra={
                "integration_id": lease.record.integration_id,
                "aws_error": aws.error_code(exc) or type(exc.cause or exc).__name__,
            },
        )
        return False


def _bookkeeping(tokens: vault.StoredTokens) -> list[Any]:
    return [
        Integration.access_expires_at.set(tokens.access_expires_at),
        Integration.refresh_expires_at.set(tokens.refresh_expires_at),
        Integration.refresh_bucket.set(REFRESH_BUCKET),
        Integration.refresh_due_at.set(refresh_due_at(tokens)),
        Integration.refresh_failures.set(0),
    ]


# -- outcomes ---------------------------------------------------------------------------------------
def _mark_needs_reauth(lease: _Lease, now: float, reason: str) -> ReauthRequired:
    """The grant is dead: ``needs_reauth``, off the refresh schedule. The secret stays (a reconnect
    overwrites it; a disconnect deletes it)."""
    _finish(
        lease,
        [
            Integration.status.set("needs_reauth"),
            Integration.updated_at.set(clock.iso(now)),
            Integration.refresh_bucket.remove(),
            Integration.refresh_due_at.remove(),
        ],
        extra_condition=Integration.status == "active",
    )
    _count("IntegrationNeedsReauth")
    logger.warning(
        "tiktok integration needs reauthorization",
        extra={"integration_id": lease.record.integration_id, "reason": reason},
    )
    return ReauthRequired("The TikTok account must be reconnected")


def _record_failure(lease: _Lease, now: float, exc: TikTokError) -> TransientError:
    """A transient TikTok failure: old tokens untouched, one more consecutive failure, next
    scheduled attempt backed off."""
    failures = int(lease.record.refresh_failures or 0) + 1
    retry_at = int(now) + _backoff(failures)
    _finish(
        lease,
        [Integration.refresh_failures.set(failures), Integration.refresh_due_at.set(retry_at)],
    )
    _count("TokenRefreshFailed")
    logger.warning(
        "tiktok token refresh failed; will retry",
        extra={
            "integration_id": lease.record.integration_id,
            "tiktok_error": exc.code,
            "tiktok_log_id": exc.log_id,
            "http_status": exc.status,
            "refresh_failures": failures,
            "next_attempt_at": clock.iso(retry_at),
        },
    )
    return TransientError("TikTok is unavailable, try again")


def _persist_rotation(integration_id: str, tokens: vault.StoredTokens, sleep: Sleep) -> None:
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            vault.store(integration_id, tokens, exists=True)
            return
        except TransientError:
            if attempt == STORE_ATTEMPTS:
                # TikTok already killed the old refresh token: this grant is most likely lost and
                # the next attempt will find out (invalid_grant → needs_reauth).
                _count("TokenRotationLost")
                logger.error("refreshed tokens could not be stored", extra={"integration_id": integration_id})
                raise
            sleep(STORE_RETRY_SECONDS * attempt)


def _from_grant(grant: TokenGrant, issued_at: float) -> vault.StoredTokens:
    return vault.StoredTokens(
        open_id=grant.open_id,
        scopes=grant.scopes,
        access_expires_at=int(issued_at) + grant.expires_in,
        refresh_expires_at=int(issued_at) + grant.refresh_expires_in,
        issued_at=int(issued_at),
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
    )


def _load_under_lease(lease: _Lease, sleep: Sleep) -> vault.StoredTokens | None:
    """The vault's tokens. The record's expiry is written after the vault, so a vault that looks
    older than the record is a read that has not caught up yet: read once more before trusting it
    (refreshing with a stale refresh token would burn the grant)."""
    integration_id = lease.record.integration_id
    stored = vault.load(integration_id)
    recorded = lease.record.access_expires_at
    if stored is not None and recorded is not None and stored.access_expires_at < int(recorded):
        sleep(LEASE_WAIT_SECONDS)
        stored = vault.load(integration_id)
    return stored


def _refresh_locked(
    lease: _Lease, stale: Callable[[vault.StoredTokens, float], bool], sleep: Sleep
) -> tuple[vault.StoredTokens, bool]:
    """Holding the lease: return usable tokens and whether this call refreshed them. Always ends
    the lease."""
    integration_id = lease.record.integration_id
    try:
        now = clock.now()
        stored = _load_under_lease(lease, sleep)
        if stored is None:
            raise _mark_needs_reauth(lease, now, "no_tokens")
        if not stale(stored, now):
            # Another worker refreshed (or a crash left the record behind the vault): sync it.
            _finish(lease, _bookkeeping(stored))
            return stored, False
        if stored.refresh_expires_at <= now:
            raise _mark_needs_reauth(lease, now, "refresh_token_expired")
        creds = app_credentials()
        try:
            grant = tiktok_client().refresh(creds, stored.refresh_token)
        except TikTokGrantError as exc:
            current = vault.load(integration_id)
            if current is not None and current.refresh_token != stored.refresh_token:
                # The grant was replaced while we held the lease (a reconnect): not a dead grant.
                _finish(lease, [])
                if stale(current, clock.now()):
                    raise TransientError("The TikTok tokens changed meanwhile, try again") from None
                return current, False
            logger.info(
                "tiktok refused the refresh token",
                extra={
                    "integration_id": integration_id,
                    "tiktok_error": exc.code,
                    "tiktok_log_id": exc.log_id,
                },
            )
            raise _mark_needs_reauth(lease, now, exc.code) from None
        except TikTokError as exc:
            raise _record_failure(lease, now, exc) from None
        fresh = _from_grant(grant, now)
        _persist_rotation(integration_id, fresh, sleep)  # before anyone can use the new token
        _finish(lease, _bookkeeping(fresh))
        _count("TokenRefreshed")
        logger.info(
            "tiktok tokens refreshed",
            extra={"integration_id": integration_id, "access_expires_at": clock.iso(fresh.access_expires_at)},
        )
        return fresh, True
    except Exception:
        if lease.open:
            _finish(lease, [])
        raise


# -- interactive callers ----------------------------------------------------------------------------
def _valid_tokens(integration: Integration, sleep: Sleep) -> vault.StoredTokens:
    if integration.status != "active":
        raise ReauthRequired("The TikTok account must be reconnected")
    stored = vault.load(integration.integration_id)
    if stored is not None and _usable(stored, clock.now()):
        return stored
    lease = _take_lease(integration.workspace_id, integration.integration_id, clock.now())
    if lease is not None:
        tokens, _ = _refresh_locked(lease, lambda t, now: not _usable(t, now), sleep)
        return tokens
    current = _reread(integration)
    if current is None or current.status != "active":
        raise ReauthRequired("The TikTok account must be reconnected")
    # Another worker holds the lease: wait for its result, never refresh here.
    for _ in range(LEASE_WAIT_ATTEMPTS):
        sleep(LEASE_WAIT_SECONDS)
        stored = vault.load(integration.integration_id)
        if stored is not None and _usable(stored, clock.now()):
            return stored
    _count("TokenRefreshLeaseBusy")
    raise TransientError("The TikTok token is being refreshed, try again")


def _reread(integration: Integration) -> Integration | None:
    try:
        return integrations().get(integration.workspace_id, integration.integration_id, consistent_read=True)
    except DoesNotExist:
        return None
    except GetError as exc:
        raise TransientError("Could not read the integration, try again") from exc


def access_token(integration: Integration, *, sleep: Sleep | None = None) -> str:
    """A TikTok access token of ``integration`` that stays valid for at least a few minutes.

    Returns the stored token when it is fresh; otherwise refreshes it under the integration's
    lease (or waits for the worker that holds it). Raises ``ReauthRequired`` when the grant is
    dead and ``TransientError`` when TikTok or AWS failed in a way a retry may fix."""
    return _valid_tokens(integration, sleep or time.sleep).access_token


def access_token_for_revoke(integration: Integration, *, sleep: Sleep | None = None) -> str | None:
    """A live token to revoke on disconnect, refreshing an expired one; ``None`` when there is no
    secret or the grant is dead. Never raises for a dead grant: the disconnect goes on without a
    revoke. A transient refresh failure falls back to the stored token while it is unexpired."""
    if integration.status != "active":
        return None
    try:
        return access_token(integration, sleep=sleep)
    except ReauthRequired:
        return None
    except TransientError:
        stored = vault.load(integration.integration_id)
        if stored is not None and stored.access_expires_at > clock.now():
            return stored.access_token
        return None


# -- the scheduled refresh --------------------------------------------------------------------------
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


def _drop_from_schedule(record: Integration) -> None:
    # A non-active integration still in the index (e.g. revoked by a webhook) needs no refresh.
    try:
        record.update(
            actions=[Integration.refresh_bucket.remove(), Integration.refresh_due_at.remove()],
            condition=Integration.status != "active",
        )
    except PynamoDBException:
        logger.info(
            "integration left in the refresh schedule", extra={"integration_id": record.integration_id}
        )


def refresh_integration(workspace_id: str, integration_id: str, *, sleep: Sleep | None = None) -> Outcome:
    """Refresh one integration if it is due; the scheduled run's unit of work. Never waits for a
    lease another worker holds (``busy``), and reports transient failures as ``failed``."""
    try:
        record = integrations().get(workspace_id, integration_id, consistent_read=True)
    except DoesNotExist:
        return "skipped"
    except GetError:
        return "failed"
    if record.status != "active":
        _drop_from_schedule(record)
        return "skipped"
    now = clock.now()
    # The index is eventually consistent: trust the record's own due time.
    if record.refresh_due_at is not None and int(record.refresh_due_at) > now:
        return "fresh"
    try:
        lease = _take_lease(workspace_id, integration_id, now)
        if lease is None:
            return "busy"
        _, refreshed = _refresh_locked(lease, lambda t, at: refresh_due_at(t) <= at, sleep or time.sleep)
    except ReauthRequired:
        return "needs_reauth"
    except DomainError:
        return "failed"
    return "refreshed" if refreshed else "fresh"


def _chunks(rows: Iterable[Integration], size: int) -> Iterator[list[Integration]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def refresh_due_tokens(*, time_left_ms: Callable[[], int] | None = None) -> RefreshReport:
    """Refresh every integration whose access token is due (Query on the sparse ``by_refresh_due``
    index, never a Scan), in bounded parallel batches. One integration's failure never stops the
    others; integrations left when time runs short are ``deferred`` to the next run."""
    report = RefreshReport()
    started = clock.now()
    model = integrations()
    keys = model.by_refresh_due.query(
        REFRESH_BUCKET, Integration.refresh_due_at <= int(started), page_size=BATCH_SIZE
    )

    def work(key: Integration) -> tuple[str, Outcome]:
        if time_left_ms is not None and time_left_ms() < ITEM_BUDGET_MS:
            return key.integration_id, "deferred"
        try:
            return key.integration_id, refresh_integration(key.workspace_id, key.integration_id)
        except Exception as exc:  # one integration's bug must not stop the run
            logger.error(
                "token refresh crashed",
                extra={"integration_id": key.integration_id, "error_type": type(exc).__name__},
            )
            return key.integration_id, "failed"

    try:
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for batch in _chunks(keys, BATCH_SIZE):
                for integration_id, outcome in pool.map(work, batch):
                    report.add(integration_id, outcome)
                if time_left_ms is not None and time_left_ms() < ITEM_BUDGET_MS:
                    break
    except PynamoDBException as exc:
        logger.error("refresh schedule query failed", extra={"report": report.to_dict()})
        raise TransientError("Could not read the refresh schedule") from exc
    finally:
        _count("TokenRefreshDue", report.processed)
        _count("TokenRefreshRunFailures", len(report.failed))
    logger.info("token refresh run finished", extra={"report": report.to_dict()})
    return report
