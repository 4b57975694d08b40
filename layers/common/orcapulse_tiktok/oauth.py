"""Connecting a TikTok account: the OAuth authorization (state + PKCE) and its callback.

The callback either completes — tokens in the vault, the integration ``active`` — or leaves
nothing behind: a token it already obtained is revoked and the vault is put back as it was.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DeleteError, PynamoDBException

from orcapulse_tiktok import clock, vault
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import DomainError, TransientError
from orcapulse_tiktok.models.integration import REFRESH_BUCKET, Integration, integration_id_for, integrations
from orcapulse_tiktok.models.oauth_state import OAuthState, oauth_states
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.tiktok import pkce
from orcapulse_tiktok.tiktok.credentials import AppCredentials, app_credentials

if TYPE_CHECKING:
    from orcapulse_tiktok.tiktok.client import TokenGrant

STATE_TTL_SECONDS = 600
MAX_PARAM_LENGTH = 2048
CALLBACK_REASONS = (
    "access_denied",
    "invalid_state",
    "missing_scope",
    "token_exchange_failed",
    "profile_fetch_failed",
    "internal_error",
)


class CallbackFailed(Exception):
    """The callback cannot complete; ``reason`` is one of ``CALLBACK_REASONS``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Authorization:
    authorize_url: str
    expires_at: str


def start_authorization(*, user_id: str, workspace_id: str) -> Authorization:
    """Create a single-use state bound to the user and workspace and build TikTok's authorize URL."""
    settings = get_settings()
    redirect_uri = settings.require("redirect_uri")
    creds = app_credentials()
    state = pkce.new_state()
    now = clock.now()
    expires = int(now) + STATE_TTL_SECONDS
    record = oauth_states()(
        pkce.hash_state(state),
        workspace_id=workspace_id,
        user_id=user_id,
        scopes=",".join(settings.scopes),
        created_at=clock.iso(now),
        expires_at=expires,
    )
    try:
        record.save(condition=OAuthState.state_hash.does_not_exist())
    except PynamoDBException as exc:
        raise TransientError("Could not start the authorization, try again") from exc
    query = {
        "client_key": creds.client_key,
        "scope": ",".join(settings.scopes),
        "redirect_uri": redirect_uri,
        "state": state,
        "response_type": "code",
        "code_challenge": pkce.code_challenge(pkce.code_verifier(state, creds.client_secret)),
        "code_challenge_method": "S256",
    }
    metrics.add_metric(name="OAuthStarted", unit="Count", value=1)
    return Authorization(
        authorize_url=f"{settings.auth_url}?{urlencode(query)}", expires_at=clock.iso(expires)
    )


def _consume_state(state: str | None) -> OAuthState:
    """Atomically delete the state and return it; a missing, replayed or expired state fails."""
    if not state or len(state) > MAX_PARAM_LENGTH:
        raise CallbackFailed("invalid_state")
    model = oauth_states()
    item = model(pkce.hash_state(state))
    try:
        conn = model._get_connection()
        result = conn.delete_item(
            item.state_hash,
            condition=OAuthState.state_hash.exists(),
            return_values="ALL_OLD",
        )
    except DeleteError as exc:
        cause = getattr(exc, "cause_response_code", None)
        if cause == "ConditionalCheckFailedException":
            raise CallbackFailed("invalid_state") from None
        raise CallbackFailed("internal_error") from exc
    old = model.from_raw_data(result["Attributes"])
    if old.expires_at < clock.now():
        raise CallbackFailed("invalid_state")
    return old


def _granted(query_scopes: str | None, required: tuple[str, ...]) -> bool:
    granted = {s.strip() for s in (query_scopes or "").split(",") if s.strip()}
    return set(required) <= granted


def _revoke_quietly(creds: AppCredentials, grant: TokenGrant, why: str) -> None:
    from orcapulse_tiktok.tiktok.client import TikTokError, tiktok_client

    try:
        tiktok_client().revoke(creds, grant.access_token)
    except TikTokError as exc:
        logger.warning(
            "could not revoke the token of a failed connect",
            extra={"why": why, "tiktok_error": exc.code, "tiktok_log_id": exc.log_id},
        )
        metrics.add_metric(name="RevokeFailed", unit="Count", value=1)


def complete_authorization(params: dict[str, Any]) -> str:
    """Finish the OAuth flow from the callback's query parameters; return the integration id."""
    # Imported here, not at the top: the start function shares this module and never calls
    # TikTok, so its cold start does not pay for requests.
    from orcapulse_tiktok.tiktok.client import TikTokError, TikTokGrantError, tiktok_client

    settings = get_settings()
    state = params.get("state")
    if params.get("error"):
        # The user declined (or TikTok refused): spend the state so it cannot be used again.
        with contextlib.suppress(CallbackFailed):
            _consume_state(state)
        raise CallbackFailed("access_denied")
    saved = _consume_state(state)
    required = tuple(s for s in saved.scopes.split(",") if s) or settings.scopes
    code = params.get("code")
    if not code or len(code) > MAX_PARAM_LENGTH:
        raise CallbackFailed("token_exchange_failed")
    if not _granted(params.get("scopes"), required):
        raise CallbackFailed("missing_scope")
    try:
        creds = app_credentials()
    except DomainError as exc:
        raise CallbackFailed("internal_error") from exc
    client = tiktok_client()
    try:
        grant = client.exchange_code(
            creds,
            code=code,
            redirect_uri=settings.require("redirect_uri"),
            code_verifier=pkce.code_verifier(state or "", creds.client_secret),
        )
    except TikTokError as exc:
        logger.warning("token exchange failed", extra={"tiktok_error": exc.code, "tiktok_log_id": exc.log_id})
        raise CallbackFailed("token_exchange_failed") from None
    if not set(required) <= set(grant.scopes):
        _revoke_quietly(creds, grant, "missing_scope")
        raise CallbackFailed("missing_scope")
    try:
        profile = client.user_info(grant.access_token)
        if profile.open_id != grant.open_id:
            raise TikTokGrantError("open_id_mismatch")
    except TikTokError as exc:
        logger.warning("profile fetch failed", extra={"tiktok_error": exc.code, "tiktok_log_id": exc.log_id})
        _revoke_quietly(creds, grant, "profile_fetch_failed")
        raise CallbackFailed("profile_fetch_failed") from None

    integration_id = integration_id_for(saved.workspace_id, grant.open_id)
    now = clock.now()
    tokens = vault.StoredTokens(
        open_id=grant.open_id,
        scopes=grant.scopes,
        access_expires_at=int(now) + grant.expires_in,
        refresh_expires_at=int(now) + grant.refresh_expires_in,
        issued_at=int(now),
        access_token=grant.access_token,
        refresh_token=grant.refresh_token,
    )
    try:
        previous = vault.load(integration_id)
        vault.store(integration_id, tokens, exists=previous is not None)
    except DomainError:
        _revoke_quietly(creds, grant, "vault_write_failed")
        raise CallbackFailed("internal_error") from None
    try:
        _upsert_integration(integration_id, saved, grant, profile_fields(profile), tokens, now)
    except (PynamoDBException, ClientError, BotoCoreError):
        logger.exception("integration write failed; rolling back the vault")
        _rollback_vault(integration_id, previous)
        _revoke_quietly(creds, grant, "integration_write_failed")
        raise CallbackFailed("internal_error") from None
    metrics.add_metric(name="IntegrationConnected", unit="Count", value=1)
    logger.info("tiktok account connected", extra={"integration_id": integration_id})
    return integration_id


def profile_fields(profile: Any) -> dict[str, str | None]:
    return {
        "union_id": profile.union_id,
        "display_name": profile.display_name,
        "avatar_url": profile.avatar_url,
    }


def _rollback_vault(integration_id: str, previous: vault.StoredTokens | None) -> None:
    try:
        if previous is None:
            vault.delete(integration_id)
        else:
            vault.store(integration_id, previous, exists=True)
    except DomainError:
        # The orphan check of the refresher and a retried connect both converge; say so loudly.
        logger.error("vault rollback failed", extra={"integration_id": integration_id})
        metrics.add_metric(name="VaultRollbackFailed", unit="Count", value=1)


def _upsert_integration(
    integration_id: str,
    saved: OAuthState,
    grant: TokenGrant,
    profile: dict[str, str | None],
    tokens: vault.StoredTokens,
    now: float,
) -> None:
    """Create or refresh the record in one UpdateItem: a reconnect keeps the id and the last event
    time, makes the integration ``active`` again and clears a previous revocation."""
    model = integrations()
    record = model(saved.workspace_id, integration_id)
    stamp = clock.iso(now)
    record.update(
        actions=[
            Integration.platform.set("tiktok"),
            Integration.status.set("active"),
            Integration.open_id.set(grant.open_id),
            _set_or_remove(Integration.union_id, profile["union_id"]),
            _set_or_remove(Integration.display_name, profile["display_name"]),
            _set_or_remove(Integration.avatar_url, profile["avatar_url"]),
            Integration.scopes.set(list(grant.scopes)),  # type: ignore[arg-type]
            Integration.connected_at.set(stamp),
            Integration.connected_by.set(saved.user_id),
            Integration.updated_at.set(stamp),
            Integration.revoked_reason.remove(),
            Integration.access_expires_at.set(tokens.access_expires_at),
            Integration.refresh_expires_at.set(tokens.refresh_expires_at),
            Integration.refresh_bucket.set(REFRESH_BUCKET),
            # The same rule the token service applies after each refresh.
            Integration.refresh_due_at.set(tokens.refresh_due_at(get_settings().refresh_margin_seconds)),
            Integration.refresh_failures.set(0),
            Integration.refresh_lease_until.remove(),
            Integration.refresh_lease_owner.remove(),
        ]
    )


def _set_or_remove(attribute: Any, value: str | None) -> Any:
    return attribute.remove() if value is None else attribute.set(value)


def callback_redirect(
    frontend_url: str, *, integration_id: str | None = None, reason: str | None = None
) -> str:
    """Where the callback sends the browser."""
    if integration_id is not None:
        query = {"status": "connected", "integration_id": integration_id}
    else:
        query = {"status": "error", "reason": reason or "internal_error"}
    return f"{frontend_url}/integrations/tiktok?{urlencode(query)}"
