"""The kinds of TikTok account an integration can be (DESIGN §8) and the token endpoints of each.

A ``personal`` account connected through Login Kit and a ``business`` account connected through
the Accounts API of TikTok API for Business keep their tokens the same way and follow the same
lifecycle; only the endpoints (and the app credentials) differ. Records written before account
kinds existed have no ``account_type``: they are ``personal``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the HTTP clients load only where a token endpoint is called
    from orcapulse_tiktok.tiktok.client import TokenGrant

PERSONAL = "personal"
BUSINESS = "business"
# An advertiser connection of the Marketing API (DESIGN §10): lead forms, no user tokens to refresh.
ADS = "ads"
ACCOUNT_TYPES = (PERSONAL, BUSINESS, ADS)


def kind_of(account_type: str | None) -> str:
    """The account kind of a record or an OAuth state (absent is ``personal``)."""
    return account_type if account_type in (BUSINESS, ADS) else PERSONAL


def refresh_grant(account_type: str | None, refresh_token: str) -> TokenGrant:
    """Refresh at the account kind's token endpoint (the refresh token rotates)."""
    if kind_of(account_type) == BUSINESS:
        from orcapulse_tiktok.tiktok.business_client import business_client
        from orcapulse_tiktok.tiktok.credentials import business_app_credentials

        return business_client().refresh(business_app_credentials(), refresh_token)
    from orcapulse_tiktok.tiktok.client import tiktok_client
    from orcapulse_tiktok.tiktok.credentials import app_credentials

    return tiktok_client().refresh(app_credentials(), refresh_token)


def revoke_token(account_type: str | None, access_token: str) -> None:
    """Revoke an access token at the account kind's revoke endpoint."""
    if kind_of(account_type) == BUSINESS:
        from orcapulse_tiktok.tiktok.business_client import business_client
        from orcapulse_tiktok.tiktok.credentials import business_app_credentials

        business_client().revoke(business_app_credentials(), access_token)
        return
    from orcapulse_tiktok.tiktok.client import tiktok_client
    from orcapulse_tiktok.tiktok.credentials import app_credentials

    tiktok_client().revoke(app_credentials(), access_token)
