"""Integrations of a workspace: listing them and disconnecting one.

Disconnect tries a real revoke at TikTok, then deletes the token secret and then the record — in
that order, so a failure never leaves a secret without its integration, and a retried DELETE
finishes what an earlier one started."""

from __future__ import annotations

from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import vault
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.errors import NotFound, TransientError
from orcapulse_tiktok.models.integration import Integration, is_integration_id
from orcapulse_tiktok.observability import logger, metrics


class Disconnected(NamedTuple):
    integration_id: str
    revoked: bool


def get_integration(workspace_id: str, integration_id: str) -> Integration:
    """The workspace's integration; another workspace's or an unknown id is ``NotFound``."""
    if not is_integration_id(integration_id):
        raise NotFound("No such integration", code="integration_not_found")
    record = integration_store.get(workspace_id, integration_id)
    if record is None:
        raise NotFound("No such integration", code="integration_not_found")
    return record


def list_integrations(workspace_id: str, platform: str | None = None) -> list[dict[str, Any]]:
    """The workspace's integrations (one Query on the table's partition), optionally one platform's."""
    return [row.to_public() for row in integration_store.list_workspace(workspace_id, platform)]


def _revoke(integration: Integration) -> bool:
    # Imported here: the read API lists integrations and must not load the HTTP client at cold start.
    from orcapulse_tiktok import tokens
    from orcapulse_tiktok.tiktok.accounts import revoke_token
    from orcapulse_tiktok.tiktok.client import TikTokError

    try:
        access_token = tokens.access_token_for_revoke(integration)
    except TransientError:
        access_token = None
    if access_token is None:
        return False
    try:
        # The integration's own kind of token endpoint: Login Kit or the Business API.
        revoke_token(integration.account_type, access_token)
        return True
    except TikTokError as exc:
        logger.warning(
            "tiktok revoke failed; disconnecting anyway",
            extra={
                "integration_id": integration.integration_id,
                "tiktok_error": exc.code,
                "tiktok_log_id": exc.log_id,
                "http_status": exc.status,
            },
        )
        metrics.add_metric(name="RevokeFailed", unit=MetricUnit.Count, value=1)
        return False


def disconnect(workspace_id: str, integration_id: str) -> Disconnected:
    """Revoke at TikTok (best effort), delete the token secret, delete the record. An ads
    integration first removes its lead subscriptions (a transient failure is a 503 the caller
    retries), and its advertiser route items go before the record."""
    integration = get_integration(workspace_id, integration_id)
    ads = integration.account_type == "ads"
    if ads:
        from orcapulse_tiktok.lead_subscriptions import revoke_advertiser_token, unsubscribe_all

        unsubscribe_all(integration)
        revoked = revoke_advertiser_token(integration)
    else:
        revoked = _revoke(integration)
    vault.delete(integration_id)
    if ads:
        from orcapulse_tiktok.data import advertisers

        advertisers.delete_routes(
            workspace_id, integration_id, [str(a) for a in integration.advertiser_ids or []]
        )
    integration_store.delete(workspace_id, integration_id)
    metrics.add_metric(name="IntegrationDisconnected", unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name="RevokeSucceeded" if revoked else "DisconnectedWithoutRevoke", unit=MetricUnit.Count, value=1
    )
    logger.info("tiktok account disconnected", extra={"integration_id": integration_id, "revoked": revoked})
    return Disconnected(integration_id=integration_id, revoked=revoked)
