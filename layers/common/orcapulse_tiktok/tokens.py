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

The lease and the bookkeeping are named operations of ``data.integrations``; the scheduled run
that calls into this module is ``token_schedule``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock, vault
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.data.integrations import Key, RefreshSchedule
from orcapulse_tiktok.errors import DomainError, TransientError
from orcapulse_tiktok.models.integration import Integration
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.tiktok import accounts
from orcapulse_tiktok.tiktok.client import TikTokError, TikTokGrantError, TokenGrant

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

Sleep = Callable[[float], None]
Stale = Callable[[vault.StoredTokens, float], bool]


class ReauthRequired(DomainError):
    """The integration's grant is dead (or the integration is not active): the user must reconnect."""

    status = 409
    code = "integration_needs_reauth"


_metrics_lock = threading.Lock()


def count(name: str, value: int = 1) -> None:
    """Add to a count metric; thread-safe (the scheduled run refreshes from worker threads, and
    Powertools' metric set is a plain dict)."""
    with _metrics_lock:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


# -- freshness --------------------------------------------------------------------------------------
def refresh_due_at(tokens: vault.StoredTokens) -> int:
    """When the scheduled refresher should renew these tokens (``TOKEN_REFRESH_MARGIN_SECONDS``
    before they expire; see ``StoredTokens.refresh_due_at``). The OAuth callback applies the same."""
    return tokens.refresh_due_at(get_settings().refresh_margin_seconds)


def schedule_of(tokens: vault.StoredTokens) -> RefreshSchedule:
    """The record's bookkeeping for ``tokens``: expiry times and the next scheduled refresh."""
    return RefreshSchedule(tokens.access_expires_at, tokens.refresh_expires_at, refresh_due_at(tokens))


def _usable(tokens: vault.StoredTokens, now: float) -> bool:
    lifetime = tokens.lifetime
    min_validity = MIN_VALIDITY_SECONDS if lifetime is None else min(MIN_VALIDITY_SECONDS, lifetime // 2)
    return tokens.access_expires_at - now > min_validity


def _backoff(failures: int) -> int:
    return int(min(BACKOFF_BASE_SECONDS * 2 ** max(failures - 1, 0), BACKOFF_CAP_SECONDS))


def tokens_from_grant(grant: TokenGrant, issued_at: float) -> vault.StoredTokens:
    """What the vault keeps of a token endpoint answer received at ``issued_at``."""
    return vault.StoredTokens(
        open_id=grant.open_id,
        scopes=grant.scopes,
        access_expires_at=int(issued_at) + grant.expires_in,
        refresh_expires_at=int(issued_at) + grant.refresh_expires_in,
        issued_at=int(issued_at),
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
    )


# -- the lease --------------------------------------------------------------------------------------
class Lease:
    """The integration's refresh lease, held by this worker. ``record`` is the integration as it
    was read before the lease was taken (its bookkeeping guides the refresh)."""

    __slots__ = ("key", "open", "owner", "record")

    def __init__(self, record: Integration, owner: str) -> None:
        self.record = record
        self.key: Key = (record.workspace_id, record.integration_id)
        self.owner = owner
        self.open = True

    def end(self, write: Callable[[Key, str], bool]) -> bool:
        """Release the lease with ``write`` (a ``data.integrations`` lease-ending operation). Never
        raises: the tokens are already safe in the vault, and the lease expires on its own."""
        self.open = False
        try:
            return write(self.key, self.owner)
        except DomainError:
            logger.warning("integration bookkeeping not written", extra={"integration_id": self.key[1]})
            return False


def take_lease(record: Integration, now: float) -> Lease | None:
    """Take ``record``'s refresh lease, or ``None`` when another worker holds it or the integration
    is not active (or gone)."""
    owner = uuid.uuid4().hex
    try:
        taken = integration_store.take_refresh_lease(
            record.workspace_id,
            record.integration_id,
            owner=owner,
            now=int(now),
            until=int(now) + LEASE_SECONDS,
        )
    except DomainError:
        # The write may have taken effect although its answer was lost: give back what may be ours
        # (a no-op unless this owner holds it), so the next caller need not wait for it to expire.
        Lease(record, owner).end(integration_store.release_refresh_lease)
        raise
    return Lease(record, owner) if taken else None


# -- outcomes ---------------------------------------------------------------------------------------
def _mark_needs_reauth(lease: Lease, now: float, reason: str) -> ReauthRequired:
    """The grant is dead: ``needs_reauth``, off the refresh schedule. The secret stays (a reconnect
    overwrites it; a disconnect deletes it)."""
    stamp = clock.iso(now)
    lease.end(lambda key, owner: integration_store.mark_needs_reauth(key, owner, stamp=stamp))
    count("IntegrationNeedsReauth")
    logger.warning(
        "tiktok integration needs reauthorization",
        extra={"integration_id": lease.key[1], "reason": reason},
    )
    return ReauthRequired("The TikTok account must be reconnected")


def _record_failure(lease: Lease, now: float, exc: TikTokError) -> TransientError:
    """A transient TikTok failure: old tokens untouched, one more consecutive failure, next
    scheduled attempt backed off."""
    failures = int(lease.record.refresh_failures or 0) + 1
    retry_at = int(now) + _backoff(failures)
    lease.end(
        lambda key, owner: integration_store.record_refresh_failure(
            key, owner, failures=failures, retry_at=retry_at
        )
    )
    count("TokenRefreshFailed")
    logger.warning(
        "tiktok token refresh failed; will retry",
        extra={
            "integration_id": lease.key[1],
            "tiktok_error": exc.code,
            "tiktok_log_id": exc.log_id,
            "http_status": exc.status,
            "refresh_failures": failures,
            "next_attempt_at": clock.iso(retry_at),
        },
    )
    return TransientError("TikTok is unavailable, try again")


def _record_fresh(lease: Lease, tokens: vault.StoredTokens) -> None:
    schedule = schedule_of(tokens)
    lease.end(lambda key, owner: integration_store.record_refreshed(key, owner, schedule))


def _persist_rotation(integration_id: str, tokens: vault.StoredTokens, sleep: Sleep) -> None:
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            # A write whose answer was lost is simply written again: the value is the same.
            vault.store(integration_id, tokens, exists=True)
            return
        except TransientError:
            if attempt == STORE_ATTEMPTS:
                # TikTok already killed the old refresh token: this grant is most likely lost and
                # the next attempt will find out (invalid_grant → needs_reauth).
                count("TokenRotationLost")
                logger.error("refreshed tokens could not be stored", extra={"integration_id": integration_id})
                raise
            sleep(STORE_RETRY_SECONDS * attempt)


def _load_under_lease(lease: Lease, sleep: Sleep) -> vault.StoredTokens | None:
    """The vault's tokens. The record's expiry is written after the vault, so a vault that looks
    older than the record is a read that has not caught up yet: read once more before trusting it
    (refreshing with a stale refresh token would burn the grant)."""
    integration_id = lease.key[1]
    stored = vault.load(integration_id)
    recorded = lease.record.access_expires_at
    if stored is not None and recorded is not None and stored.access_expires_at < int(recorded):
        sleep(LEASE_WAIT_SECONDS)
        stored = vault.load(integration_id)
    return stored


def refresh_locked(lease: Lease, stale: Stale, sleep: Sleep) -> tuple[vault.StoredTokens, bool]:
    """Holding the lease: return usable tokens and whether this call refreshed them. Always ends
    the lease."""
    integration_id = lease.key[1]
    try:
        now = clock.now()
        stored = _load_under_lease(lease, sleep)
        if stored is None:
            raise _mark_needs_reauth(lease, now, "no_tokens")
        if not stale(stored, now):
            # Another worker refreshed (or a crash left the record behind the vault): sync it.
            _record_fresh(lease, stored)
            return stored, False
        if stored.refresh_expires_at <= now:
            raise _mark_needs_reauth(lease, now, "refresh_token_expired")
        try:
            grant = accounts.refresh_grant(lease.record.account_type, stored.refresh_token)
        except TikTokGrantError as exc:
            current = vault.load(integration_id)
            if current is not None and current.refresh_token != stored.refresh_token:
                # The grant was replaced while we held the lease (a reconnect): not a dead grant.
                lease.end(integration_store.release_refresh_lease)
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
        fresh = tokens_from_grant(grant, now)
        _persist_rotation(integration_id, fresh, sleep)  # before anyone can use the new token
        _record_fresh(lease, fresh)
        count("TokenRefreshed")
        logger.info(
            "tiktok tokens refreshed",
            extra={"integration_id": integration_id, "access_expires_at": clock.iso(fresh.access_expires_at)},
        )
        return fresh, True
    except Exception:
        # Not BaseException: a worker that dies (timeout, kill) keeps the lease until it expires.
        if lease.open:
            lease.end(integration_store.release_refresh_lease)
        raise


# -- interactive callers ----------------------------------------------------------------------------
def _valid_tokens(integration: Integration, sleep: Sleep) -> vault.StoredTokens:
    if integration.status != "active":
        raise ReauthRequired("The TikTok account must be reconnected")
    stored = vault.load(integration.integration_id)
    if stored is not None and _usable(stored, clock.now()):
        return stored
    lease = take_lease(integration, clock.now())
    if lease is not None:
        tokens, _ = refresh_locked(lease, lambda t, now: not _usable(t, now), sleep)
        return tokens
    current = integration_store.get(integration.workspace_id, integration.integration_id)
    if current is None or current.status != "active":
        raise ReauthRequired("The TikTok account must be reconnected")
    # Another worker holds the lease: wait for its result, never refresh here.
    for _ in range(LEASE_WAIT_ATTEMPTS):
        sleep(LEASE_WAIT_SECONDS)
        stored = vault.load(integration.integration_id)
        if stored is not None and _usable(stored, clock.now()):
            return stored
    count("TokenRefreshLeaseBusy")
    raise TransientError("The TikTok token is being refreshed, try again")


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
