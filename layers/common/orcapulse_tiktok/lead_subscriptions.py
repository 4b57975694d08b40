"""LEAD subscriptions of an ads integration's advertisers (DESIGN §10).

TikTok subscriptions belong to the app, one per advertiser and callback URL. The product keeps the
subscription id of each advertiser on the integration (``subscriptions``) and the advertisers still
without one (``pending_subscriptions``, shown as ``subscription_status: pending``).

- ``ensure_subscribed`` (after a connect, and on every scheduled check) first adopts a subscription
  TikTok already has for the advertiser and our callback URL — a subscribe whose answer was lost, or
  one another workspace made for the same advertiser — then subscribes the rest. It never raises:
  what fails stays pending for the next run; an invalid advertiser token marks ``needs_reauth``.
- ``unsubscribe_all`` (disconnect) removes each subscription unless another integration still
  routes that advertiser (it would lose its leads), forgetting each id as it goes, so a retried
  disconnect finishes where the last one stopped. A transient failure raises (503: retry).
"""

from __future__ import annotations

from typing import NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock, vault
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import advertisers
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.errors import DomainError, TransientError
from orcapulse_tiktok.models.integration import Integration
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.tiktok.ads_client import ads_client
from orcapulse_tiktok.tiktok.client import TikTokError, TikTokGrantError, TikTokTransientError
from orcapulse_tiktok.tiktok.credentials import business_app_credentials


class Subscribed(NamedTuple):
    subscribed: int
    pending: int


def ensure_subscribed(workspace_id: str, integration_id: str) -> Subscribed:
    """Subscribe every pending advertiser of the integration; what is still pending afterwards."""
    record: Integration | None = None
    try:
        record = integration_store.get(workspace_id, integration_id)
        if record is None or not record.pending_subscriptions:
            return Subscribed(0, 0)
        pending = sorted(record.pending_subscriptions)
        callback_url = get_settings().require("leads_webhook_url")
        creds = business_app_credentials()
        stored = vault.load(integration_id)
    except DomainError as exc:
        logger.warning(
            "lead subscriptions not checked", extra={"integration_id": integration_id, "error_code": exc.code}
        )
        metrics.add_metric(name="LeadSubscribeFailed", unit=MetricUnit.Count, value=1)
        return Subscribed(0, len(record.pending_subscriptions or ()) if record else 0)
    if stored is None:
        return Subscribed(0, len(pending))
    client = ads_client()
    done = 0
    try:
        existing = {
            s.advertiser_id: s.subscription_id
            for s in client.subscriptions(creds)
            if s.advertiser_id and s.callback_url == callback_url
        }
        for advertiser_id in pending:
            subscription_id = existing.get(advertiser_id) or client.subscribe(
                creds,
                access_token=stored.access_token,
                advertiser_id=advertiser_id,
                callback_url=callback_url,
            )
            if not advertisers.record_subscription(
                workspace_id, integration_id, advertiser_id, subscription_id
            ):
                break  # disconnected meanwhile
            done += 1
    except TikTokGrantError:
        logger.warning("advertiser token invalid", extra={"integration_id": integration_id})
        _needs_reauth(workspace_id, integration_id)
    except (TikTokError, DomainError) as exc:
        logger.warning(
            "lead subscribe failed; left pending",
            extra={"integration_id": integration_id, "error_code": getattr(exc, "code", "")},
        )
        metrics.add_metric(name="LeadSubscribeFailed", unit=MetricUnit.Count, value=1)
    if done:
        metrics.add_metric(name="LeadSubscriptionsCreated", unit=MetricUnit.Count, value=done)
    return Subscribed(done, len(pending) - done)


def unsubscribe_all(record: Integration) -> None:
    """Remove the integration's subscriptions at TikTok (see the module docstring)."""
    subscriptions = record.subscriptions.as_dict() if record.subscriptions is not None else {}
    if not subscriptions:
        return
    creds = business_app_credentials()
    client = ads_client()
    for advertiser_id, subscription_id in sorted(subscriptions.items()):
        others = [t for t in advertisers.route(advertiser_id) if t.integration_id != record.integration_id]
        if not others:
            try:
                client.unsubscribe(creds, str(subscription_id))
            except TikTokTransientError:
                raise TransientError("TikTok could not remove a lead subscription, try again") from None
            except TikTokError as exc:
                # Refused (already gone, or the app's access changed): nothing a retry changes.
                logger.warning(
                    "lead unsubscribe refused; disconnecting anyway",
                    extra={
                        "integration_id": record.integration_id,
                        "tiktok_error": exc.code,
                        "tiktok_log_id": exc.log_id,
                    },
                )
                metrics.add_metric(name="LeadUnsubscribeFailed", unit=MetricUnit.Count, value=1)
        advertisers.forget_subscription(record.workspace_id, record.integration_id, advertiser_id)


def _needs_reauth(workspace_id: str, integration_id: str) -> None:
    try:
        advertisers.mark_needs_reauth(workspace_id, integration_id, clock.iso(clock.now()))
        metrics.add_metric(name="AdsNeedsReauth", unit=MetricUnit.Count, value=1)
    except DomainError:
        logger.warning("could not mark needs_reauth", extra={"integration_id": integration_id})


def revoke_advertiser_token(record: Integration) -> bool:
    """Revoke the integration's advertiser token (``oauth2/revoke_token/``), best effort: whether
    TikTok confirmed it. A token another integration of the same user still uses is not shared:
    each connect stores the token it was given."""
    try:
        stored = vault.load(record.integration_id)
    except TransientError:
        return False
    if stored is None or not stored.access_token:
        return False
    try:
        ads_client().revoke_token(business_app_credentials(), stored.access_token)
    except TikTokError as exc:
        logger.warning(
            "advertiser token revoke failed; disconnecting anyway",
            extra={
                "integration_id": record.integration_id,
                "tiktok_error": exc.code,
                "tiktok_log_id": exc.log_id,
            },
        )
        metrics.add_metric(name="RevokeFailed", unit=MetricUnit.Count, value=1)
        return False
    return True
