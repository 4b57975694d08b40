"""Starting a TikTok connection: a single-use OAuth state bound to the user and workspace, and
TikTok's authorize URL with its PKCE challenge (the callback is ``oauth_callback``)."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlencode

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import oauth_states
from orcapulse_tiktok.observability import metrics
from orcapulse_tiktok.tiktok import pkce
from orcapulse_tiktok.tiktok.accounts import ADS, BUSINESS
from orcapulse_tiktok.tiktok.credentials import app_credentials, business_app_credentials

STATE_TTL_SECONDS = 600


class Authorization(NamedTuple):
    authorize_url: str
    expires_at: str


def start_authorization(*, user_id: str, workspace_id: str, account_type: str = "personal") -> Authorization:
    """Create a single-use state bound to the user and workspace and build TikTok's authorize URL.

    The state is stored hashed, with a TTL the callback checks on read too, and remembers the
    account kind, so the one callback completes the matching flow. A personal account goes
    through Login Kit with PKCE (the verifier is derived from the state and the client secret, so
    nothing secret is stored); a business account through the same consent page with the Business
    app's ``app_id`` as ``client_key`` and the business scopes — its token endpoint takes no PKCE
    verifier (docs/business-accounts.md)."""
    settings = get_settings()
    redirect_uri = settings.require("redirect_uri")
    business = account_type == BUSINESS
    creds = business_app_credentials() if business else app_credentials()
    state = pkce.new_state()
    now = clock.now()
    expires = int(now) + STATE_TTL_SECONDS
    scopes = ",".join(settings.business_scopes if business else settings.scopes)
    oauth_states.put_state(
        pkce.hash_state(state),
        workspace_id=workspace_id,
        user_id=user_id,
        scopes=scopes,
        created_at=clock.iso(now),
        expires_at=expires,
        account_type=BUSINESS if business else "personal",
    )
    query = {
        "client_key": creds.client_key,
        "scope": scopes,
        "redirect_uri": redirect_uri,
        "state": state,
        "response_type": "code",
    }
    if not business:
        query["code_challenge"] = pkce.code_challenge(pkce.code_verifier(state, creds.client_secret))
        query["code_challenge_method"] = "S256"
    metrics.add_metric(name="OAuthStarted", unit=MetricUnit.Count, value=1)
    return Authorization(
        authorize_url=f"{settings.auth_url}?{urlencode(query)}", expires_at=clock.iso(expires)
    )


def start_ads_authorization(*, user_id: str, workspace_id: str) -> Authorization:
    """A single-use ``ads`` state and the advertiser consent page's URL."""
    settings = get_settings()
    redirect_uri = settings.require("ads_redirect_uri")
    creds = business_app_credentials()
    state = pkce.new_state()
    now = clock.now()
    expires = int(now) + STATE_TTL_SECONDS
    oauth_states.put_state(
        pkce.hash_state(state),
        workspace_id=workspace_id,
        user_id=user_id,
        scopes="",
        created_at=clock.iso(now),
        expires_at=expires,
        account_type=ADS,
    )
    query = {"app_id": creds.client_key, "state": state, "redirect_uri": redirect_uri}
    metrics.add_metric(name="OAuthStarted", unit=MetricUnit.Count, value=1)
    return Authorization(f"{settings.ads_auth_url}?{urlencode(query)}", clock.iso(expires))
