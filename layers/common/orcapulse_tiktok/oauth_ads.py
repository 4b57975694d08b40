"""Connecting TikTok advertisers (DESIGN §10): the Marketing API's advertiser authorisation.

Start: a single-use state (the same rules as the other flows: hashed, 10 minutes, bound to user
and workspace, remembering the kind ``ads``) and the consent page
``TIKTOK_ADS_AUTH_URL?app_id&state&redirect_uri``. Callback (``auth_code``, ``state``):
``oauth2/access_token/`` → ``oauth2/advertiser/get/`` → the token into the vault → the ``ads``
integration of the authorising user, with its advertisers and their route items. Any failure
redirects with the §3 reason and stores nothing (a token already obtained is revoked). Then each
advertiser is subscribed to ``LEAD``; a failed subscribe leaves the advertiser pending on the
integration (shown by the read API) for the scheduled check to finish.
"""

from __future__ import annotations

import contextlib
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock, lead_subscriptions, vault
from orcapulse_tiktok.data import advertisers
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.models.integration import integration_id_for
from orcapulse_tiktok.oauth_callback import (
    MAX_PARAM_LENGTH,
    CallbackFailed,
    CallbackOutcome,
    _consume_state,
    redirect_after,
    run_undos,
)
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.tiktok.accounts import ADS
from orcapulse_tiktok.tiktok.ads_client import AdvertiserGrant, ads_client
from orcapulse_tiktok.tiktok.client import TikTokError
from orcapulse_tiktok.tiktok.credentials import AppCredentials, business_app_credentials

# An ads integration's "account" is the authorising OrcaPulse user: one per user and workspace.
OWNER_PREFIX = "ads-user:"


def complete_ads_authorization(params: dict[str, Any]) -> CallbackOutcome:
    """Finish the advertiser flow; every outcome is a redirect to the front end (as §3)."""
    return redirect_after(lambda: _complete(params), flow="ads callback")


def _complete(params: dict[str, Any]) -> str:
    state = params.get("state")
    if params.get("error") or (params.get("auth_code") is None and params.get("code") is None):
        # Declined at TikTok (no auth_code comes back): spend the state so it cannot be used again.
        with contextlib.suppress(CallbackFailed):
            _consume_state(state)
        raise CallbackFailed("access_denied")
    saved = _consume_state(state)
    if saved.account_type != ADS:
        raise CallbackFailed("invalid_state")  # a state of the other callback's flows
    code = params.get("auth_code") or params.get("code")
    if not isinstance(code, str) or not code or len(code) > MAX_PARAM_LENGTH:
        raise CallbackFailed("token_exchange_failed")
    try:
        creds = business_app_credentials()
    except DomainError as exc:
        raise CallbackFailed("internal_error") from exc
    client = ads_client()
    try:
        grant = client.access_token(creds, code)
    except TikTokError as exc:
        logger.warning(
            "ads token exchange failed", extra={"tiktok_error": exc.code, "tiktok_log_id": exc.log_id}
        )
        raise CallbackFailed("token_exchange_failed") from None
    try:
        names = client.advertisers(creds, grant.access_token)
    except TikTokError as exc:
        logger.warning(
            "advertiser list failed", extra={"tiktok_error": exc.code, "tiktok_log_id": exc.log_id}
        )
        _revoke_quietly(creds, grant, "profile_fetch_failed")
        raise CallbackFailed("profile_fetch_failed") from None
    advertiser_ids = sorted(set(grant.advertiser_ids) | set(names))
    if not advertiser_ids:
        _revoke_quietly(creds, grant, "missing_scope")
        raise CallbackFailed("missing_scope")  # authorised, but for no advertiser at all
    integration_id = _save(saved.workspace_id, saved.user_id, grant, advertiser_ids, names, creds)
    metrics.add_metric(name="IntegrationConnected", unit=MetricUnit.Count, value=1)
    logger.info(
        "tiktok advertisers connected",
        extra={"integration_id": integration_id, "account_type": ADS, "advertisers": len(advertiser_ids)},
    )
    # Stored: the subscriptions are completed now or by the scheduled check, never undone here.
    lead_subscriptions.ensure_subscribed(saved.workspace_id, integration_id)
    return integration_id


def _save(
    workspace_id: str,
    user_id: str,
    grant: AdvertiserGrant,
    advertiser_ids: list[str],
    names: dict[str, str | None],
    creds: AppCredentials,
) -> str:
    """Token into the vault, route items, then the record; on any failure all three are put back
    as they were (a write that failed may have taken effect) and the token revoked."""
    owner = OWNER_PREFIX + user_id
    integration_id = integration_id_for(workspace_id, owner)
    now = clock.now()
    tokens = vault.StoredTokens(
        open_id=owner,
        scopes=grant.scope,
        access_expires_at=0,  # an advertiser token does not expire
        refresh_expires_at=0,
        issued_at=int(now),
        access_token=grant.access_token,
        refresh_token="",  # an advertiser token has none  # nosec B106
    )
    try:
        previous_tokens = vault.load(integration_id)
        previous_record = integration_store.snapshot(workspace_id, integration_id)
    except DomainError:
        _revoke_quietly(creds, grant, "storage_unavailable")
        raise CallbackFailed("internal_error") from None
    before = set(previous_record_advertisers(previous_record))
    display = ", ".join(n for n in (names.get(a) for a in advertiser_ids) if n)[:200] or None
    try:
        vault.store(integration_id, tokens, exists=previous_tokens is not None)
        advertisers.put_routes(workspace_id, integration_id, advertiser_ids, clock.iso(now))
        advertisers.upsert_ads(
            workspace_id,
            integration_id,
            owner=owner,
            advertiser_ids=advertiser_ids,
            display_name=display,
            connected_by=user_id,
            stamp=clock.iso(now),
        )
        # Advertisers the token no longer covers stop routing here.
        advertisers.delete_routes(workspace_id, integration_id, sorted(before - set(advertiser_ids)))
    except DomainError:
        logger.warning(
            "ads connect could not be saved; rolling back", extra={"integration_id": integration_id}
        )
        _roll_back(workspace_id, integration_id, previous_record, previous_tokens, before, advertiser_ids)
        _revoke_quietly(creds, grant, "save_failed")
        raise CallbackFailed("internal_error") from None
    return integration_id


def previous_record_advertisers(previous: dict[str, Any] | None) -> list[str]:
    """The advertisers of a record snapshot (raw attributes)."""
    if not previous:
        return []
    return [v.get("S", "") for v in previous.get("advertiser_ids", {}).get("L", []) if v.get("S")]


def _roll_back(
    workspace_id: str,
    integration_id: str,
    previous_record: dict[str, Any] | None,
    previous_tokens: vault.StoredTokens | None,
    before: set[str],
    advertiser_ids: list[str],
) -> None:
    """Record, routes and vault as they were; each undo retried once, then alarmed."""
    run_undos(
        integration_id,
        lambda: integration_store.restore(workspace_id, integration_id, previous_record),
        lambda: advertisers.delete_routes(workspace_id, integration_id, sorted(set(advertiser_ids) - before)),
        lambda: advertisers.put_routes(workspace_id, integration_id, sorted(before), clock.iso(clock.now())),
        lambda: (
            vault.delete(integration_id)
            if previous_tokens is None
            else vault.store(integration_id, previous_tokens, exists=True)
        ),
        flow="ads connect",
    )


def _revoke_quietly(creds: AppCredentials, grant: AdvertiserGrant, why: str) -> None:
    try:
        ads_client().revoke_token(creds, grant.access_token)
    except TikTokError as exc:
        logger.warning(
            "could not revoke the token of a failed ads connect",
            extra={"why": why, "tiktok_error": exc.code, "tiktok_log_id": exc.log_id},
        )
        metrics.add_metric(name="RevokeFailed", unit=MetricUnit.Count, value=1)
