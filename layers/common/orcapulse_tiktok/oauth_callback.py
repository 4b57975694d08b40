"""Completing a TikTok connection: the OAuth callback.

The callback either completes — tokens in the vault, the integration ``active`` — or leaves
nothing behind: a token it already obtained is revoked, and the vault and the integration record
are put back as they were. A write that answered with an error may still have taken effect (its
answer was lost to a timeout), so the compensation undoes *both* writes whichever of them failed:
"unknown" is treated as "maybe done".
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock, vault
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import integrations as integration_store
from orcapulse_tiktok.data import oauth_states
from orcapulse_tiktok.data.integrations import Connection
from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.models.integration import integration_id_for
from orcapulse_tiktok.models.oauth_state import OAuthState
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.tiktok import pkce
from orcapulse_tiktok.tiktok.accounts import ADS, BUSINESS, PERSONAL, kind_of
from orcapulse_tiktok.tiktok.client import TikTokError, TikTokGrantError, tiktok_client
from orcapulse_tiktok.tiktok.credentials import app_credentials
from orcapulse_tiktok.tokens import schedule_of, tokens_from_grant

if TYPE_CHECKING:
    from orcapulse_tiktok.tiktok.client import TikTokProfile, TokenGrant

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


class CallbackOutcome(NamedTuple):
    """Where the browser goes: connected with the integration id, or an error reason."""

    location: str
    integration_id: str | None = None
    reason: str | None = None


def complete_authorization(params: dict[str, Any]) -> CallbackOutcome:
    """Finish the OAuth flow from the callback's query parameters. Never raises for a failed
    connect: every outcome is a redirect to the front end (``FRONTEND_URL``)."""
    return redirect_after(lambda: _complete(params), flow="callback")


def redirect_after(complete: Callable[[], str], *, flow: str) -> CallbackOutcome:
    """The front-end redirect of a callback (DESIGN §3) whose ``complete`` step connects an
    integration and returns its id: ``connected``, or ``error`` with the reason code (a failure
    that is not a ``CallbackFailed`` is logged, by ``flow``, and is ``internal_error``)."""
    frontend_url = get_settings().require("frontend_url")
    try:
        integration_id = complete()
    except CallbackFailed as failure:
        return _failed(frontend_url, failure.reason)
    except DomainError as exc:
        logger.error(f"{flow} failed", extra={"error_code": exc.code})
        return _failed(frontend_url, "internal_error")
    query = urlencode({"status": "connected", "integration_id": integration_id})
    return CallbackOutcome(f"{frontend_url}/integrations/tiktok?{query}", integration_id=integration_id)


def _failed(frontend_url: str, reason: str) -> CallbackOutcome:
    metrics.add_metric(name="OAuthCallbackFailed", unit=MetricUnit.Count, value=1)
    query = urlencode({"status": "error", "reason": reason})
    return CallbackOutcome(f"{frontend_url}/integrations/tiktok?{query}", reason=reason)


def _consume_state(state: str | None) -> OAuthState:
    """Atomically take the state; a missing, replayed or expired state fails."""
    if not state or len(state) > MAX_PARAM_LENGTH:
        raise CallbackFailed("invalid_state")
    try:
        saved = oauth_states.take_state(pkce.hash_state(state))
    except DomainError as exc:
        raise CallbackFailed("internal_error") from exc
    if saved is None or saved.expires_at < clock.now():
        raise CallbackFailed("invalid_state")
    return saved


def granted(query_scopes: str | None, required: tuple[str, ...]) -> bool:
    """Whether the callback's ``scopes`` parameter names every required scope."""
    granted = {s.strip() for s in (query_scopes or "").split(",") if s.strip()}
    return set(required) <= granted


class Obtained(NamedTuple):
    """What a flow obtained from TikTok before anything is stored: the grant, the profile, the
    account kind and how to revoke the grant's token if the connect fails from here on."""

    grant: TokenGrant
    profile: TikTokProfile
    account_type: str
    revoke: Callable[[str], None]


def revoke_quietly(revoke: Callable[[str], None], grant: TokenGrant, why: str) -> None:
    """Revoke the token of a connect that failed; a failure is logged and counted, never raised."""
    try:
        revoke(grant.access_token)
    except TikTokError as exc:
        logger.warning(
            "could not revoke the token of a failed connect",
            extra={"why": why, "tiktok_error": exc.code, "tiktok_log_id": exc.log_id},
        )
        metrics.add_metric(name="RevokeFailed", unit=MetricUnit.Count, value=1)


def _complete(params: dict[str, Any]) -> str:
    state = params.get("state")
    if params.get("error"):
        # The user declined (or TikTok refused): spend the state so it cannot be used again.
        with contextlib.suppress(CallbackFailed):
            _consume_state(state)
        raise CallbackFailed("access_denied")
    saved = _consume_state(state)
    if saved.account_type == ADS:
        raise CallbackFailed("invalid_state")  # an advertiser state belongs to the ads callback
    code = params.get("code")
    if not code or len(code) > MAX_PARAM_LENGTH:
        raise CallbackFailed("token_exchange_failed")
    if kind_of(saved.account_type) == BUSINESS:
        # Imported here: only business connects load the Business API client.
        from orcapulse_tiktok.oauth_business import obtain_business

        obtained = obtain_business(code, params)
    else:
        obtained = _obtain_personal(saved, code, state or "", params)
    integration_id = _save(saved, obtained)
    metrics.add_metric(name="IntegrationConnected", unit=MetricUnit.Count, value=1)
    logger.info(
        "tiktok account connected",
        extra={"integration_id": integration_id, "account_type": obtained.account_type},
    )
    return integration_id


def _obtain_personal(saved: OAuthState, code: str, state: str, params: dict[str, Any]) -> Obtained:
    """Login Kit: code → tokens (with the PKCE verifier) → user info."""
    settings = get_settings()
    required = tuple(s for s in saved.scopes.split(",") if s) or settings.scopes
    if not granted(params.get("scopes"), required):
        raise CallbackFailed("missing_scope")
    try:
        creds = app_credentials()
    except DomainError as exc:
        raise CallbackFailed("internal_error") from exc
    client = tiktok_client()

    def revoke(token: str) -> None:
        client.revoke(creds, token)

    try:
        grant = client.exchange_code(
            creds,
            code=code,
            redirect_uri=settings.require("redirect_uri"),
            code_verifier=pkce.code_verifier(state, creds.client_secret),
        )
    except TikTokError as exc:
        logger.warning("token exchange failed", extra={"tiktok_error": exc.code, "tiktok_log_id": exc.log_id})
        raise CallbackFailed("token_exchange_failed") from None
    if not set(required) <= set(grant.scopes):
        revoke_quietly(revoke, grant, "missing_scope")
        raise CallbackFailed("missing_scope")
    try:
        profile = client.user_info(grant.access_token)
        if profile.open_id != grant.open_id:
            raise TikTokGrantError("open_id_mismatch")
    except TikTokError as exc:
        logger.warning("profile fetch failed", extra={"tiktok_error": exc.code, "tiktok_log_id": exc.log_id})
        revoke_quietly(revoke, grant, "profile_fetch_failed")
        raise CallbackFailed("profile_fetch_failed") from None
    return Obtained(grant, profile, PERSONAL, revoke)


def _save(saved: OAuthState, obtained: Obtained) -> str:
    """Tokens into the vault, then the integration record; on any failure both are put back as
    they were and the new token is revoked."""
    grant, profile = obtained.grant, obtained.profile
    workspace_id = saved.workspace_id
    integration_id = integration_id_for(workspace_id, grant.open_id)
    now = clock.now()
    tokens = tokens_from_grant(grant, now)
    try:
        previous_tokens = vault.load(integration_id)
        previous_record = integration_store.snapshot(workspace_id, integration_id)
    except DomainError:
        revoke_quietly(obtained.revoke, grant, "storage_unavailable")
        raise CallbackFailed("internal_error") from None
    connection = Connection(
        open_id=grant.open_id,
        union_id=profile.union_id,
        display_name=profile.display_name,
        avatar_url=profile.avatar_url,
        scopes=grant.scopes,
        connected_by=saved.user_id,
        stamp=clock.iso(now),
        schedule=schedule_of(tokens),
        account_type=obtained.account_type,
    )
    try:
        vault.store(integration_id, tokens, exists=previous_tokens is not None)
        integration_store.upsert_connected(workspace_id, integration_id, connection)
    except DomainError:
        logger.warning("connect could not be saved; rolling back", extra={"integration_id": integration_id})
        _roll_back((workspace_id, integration_id), previous_record, previous_tokens)
        revoke_quietly(obtained.revoke, grant, "save_failed")
        raise CallbackFailed("internal_error") from None
    return integration_id


def _roll_back(
    key: tuple[str, str], previous_record: dict[str, Any] | None, previous_tokens: vault.StoredTokens | None
) -> None:
    """Put record and vault back as they were before this connect, whichever write failed (a
    failed write may have taken effect). The record first: an ``active`` integration listed
    without its tokens is the worse half-state. Each undo is retried once; a failure is alarmed
    (``ConnectRollbackFailed``), and the new token is revoked anyway, so whatever is left cannot
    be used."""
    workspace_id, integration_id = key
    run_undos(
        integration_id,
        lambda: integration_store.restore(workspace_id, integration_id, previous_record),
        lambda: (
            vault.delete(integration_id)
            if previous_tokens is None
            else vault.store(integration_id, previous_tokens, exists=True)
        ),
        flow="connect",
    )


def run_undos(integration_id: str, *undos: Callable[[], object], flow: str) -> None:
    """Run each undo of a failed connect in order, each retried once; one that fails twice is
    logged and alarmed (``ConnectRollbackFailed``) and the next still runs."""
    for undo in undos:
        for attempt in (1, 2):
            try:
                undo()
                break
            except DomainError:
                if attempt == 2:
                    logger.error(f"{flow} rollback failed", extra={"integration_id": integration_id})
                    metrics.add_metric(name="ConnectRollbackFailed", unit=MetricUnit.Count, value=1)
