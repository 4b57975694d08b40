"""Completing a business-account connection (DESIGN §8): the Accounts API of TikTok API for
Business, reached through the same callback route as Login Kit.

The callback's ``code`` is exchanged at ``tt_user/oauth2/token/`` with the Business app's
credentials, the granted scopes are checked, and the business profile is loaded with
``business/get/``. What this returns is saved by ``oauth_callback`` exactly like a personal
connect: tokens in the vault, the integration upserted — or, on any failure, nothing stored and
the token revoked (at ``tt_user/oauth2/revoke/``)."""

from __future__ import annotations

from typing import Any

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.oauth_callback import CallbackFailed, Obtained, granted, revoke_quietly
from orcapulse_tiktok.observability import logger
from orcapulse_tiktok.tiktok.accounts import BUSINESS
from orcapulse_tiktok.tiktok.business_client import business_client
from orcapulse_tiktok.tiktok.client import TikTokError
from orcapulse_tiktok.tiktok.credentials import business_app_credentials

# Without these the integration gives no leads: the profile, comments and DMs (DESIGN §8).
REQUIRED_SCOPES = ("user.info.basic", "comment.list", "message.list.read")


def obtain_business(code: str, params: dict[str, Any]) -> Obtained:
    """Exchange the code, check the scopes, load the profile. Raises ``CallbackFailed`` with the
    §3 reason; a token already obtained is revoked first."""
    if params.get("scopes") is not None and not granted(params.get("scopes"), REQUIRED_SCOPES):
        # Refused before the exchange: nothing obtained, nothing to revoke.
        raise CallbackFailed("missing_scope")
    try:
        creds = business_app_credentials()
        redirect_uri = get_settings().require("redirect_uri")
    except DomainError as exc:
        raise CallbackFailed("internal_error") from exc
    client = business_client()

    def revoke(token: str) -> None:
        client.revoke(creds, token)

    try:
        grant = client.exchange_code(creds, code=code, redirect_uri=redirect_uri)
    except TikTokError as exc:
        logger.warning(
            "business token exchange failed", extra={"tiktok_error": exc.code, "tiktok_log_id": exc.log_id}
        )
        raise CallbackFailed("token_exchange_failed") from None
    if not set(REQUIRED_SCOPES) <= set(grant.scopes):
        revoke_quietly(revoke, grant, "missing_scope")
        raise CallbackFailed("missing_scope")
    try:
        profile = client.profile(grant.access_token, grant.open_id)
    except TikTokError as exc:
        logger.warning(
            "business profile fetch failed", extra={"tiktok_error": exc.code, "tiktok_log_id": exc.log_id}
        )
        revoke_quietly(revoke, grant, "profile_fetch_failed")
        raise CallbackFailed("profile_fetch_failed") from None
    return Obtained(grant, profile, BUSINESS, revoke)
