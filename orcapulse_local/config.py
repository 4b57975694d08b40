"""Fixed values of the local stack: where it listens, the stack parameters it deploys the template
with, the dev JWT settings and the local TikTok app.

Every secret here is a local constant, published on purpose: it guards nothing but a process on
127.0.0.1 and must never be used for a real deployment."""

from __future__ import annotations

import os
from dataclasses import dataclass

HOST = "127.0.0.1"
DEFAULT_PORTS = {"api": 3000, "tiktok": 3001, "aws": 3002}
PORT_VARIABLES = {"api": "LOCAL_API_PORT", "tiktok": "LOCAL_TIKTOK_PORT", "aws": "LOCAL_AWS_PORT"}

STAGE = "local"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
# moto accepts any credentials; these make sure nothing can reach a real AWS account.
AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",  # moto accepts any credentials  # nosec B105
    "AWS_SESSION_TOKEN": "local",  # moto accepts any credentials  # nosec B105
}

# Dev JWTs: HS256 with a published key, checked by the gateway's emulated JWT authorizer.
DEV_JWT_SECRET = "orcapulse-local-dev-jwt-key-not-a-secret"  # noqa: S105 - local constant, documented  # nosec B105
DEV_JWT_ISSUER = "https://issuer.orcapulse.local"
DEV_JWT_AUDIENCE = "orcapulse-local-web"
DEV_TOKEN_TTL_SECONDS = 12 * 3600
DEFAULT_WORKSPACE = "ws-local"
DEFAULT_USER = "user-local"

# The local TikTok app, known to the emulator and stored in the app secret at start-up.
LOCAL_CLIENT_KEY = "awlocalclientkey"
LOCAL_CLIENT_SECRET = "local-tiktok-client-secret-not-a-secret"  # noqa: S105 - local constant, documented  # nosec B105

# The local TikTok API for Business app (business accounts, DESIGN §8): its app_id is the consent
# page's client_key for a business account and the client_key of its webhook deliveries.
LOCAL_BUSINESS_APP_ID = "7300000000000000777"
# The emulator's own app secret, documented, never a real one.
LOCAL_BUSINESS_APP_SECRET = "local-tiktok-business-secret-not-a-secret"  # noqa: S105  # nosec B105

# The name the emulator's consent page asks the user to log in to (LOCAL_TIKTOK_APP_NAME changes it).
LOCAL_APP_NAME = "OrcaPulse (local)"

# Accounts the emulator knows from the start; the consent page can add more.
SEED_ACCOUNTS = (
    ("open-id-orca-fan", "Orca Fan Shop"),
    ("open-id-tide-pool", "Tide Pool Studio"),
)
# Business accounts the emulator knows from the start: business_id (its open_id), username, name.
SEED_BUSINESS_ACCOUNTS = (("biz-orca-outfitters", "orca_outfitters", "Orca Outfitters"),)


def port_from_env(name: str, env: dict[str, str] | None = None) -> int:
    """The port of ``name`` (api, tiktok, aws) from its variable, else its default."""
    env = dict(os.environ) if env is None else env
    raw = env.get(PORT_VARIABLES[name], "").strip()
    if not raw:
        return DEFAULT_PORTS[name]
    try:
        port = int(raw)
    except ValueError:
        raise SystemExit(f"{PORT_VARIABLES[name]} must be a port number, not {raw!r}") from None
    if not 0 <= port <= 65535:
        raise SystemExit(f"{PORT_VARIABLES[name]} must be between 0 and 65535")
    return port


@dataclass(frozen=True)
class Ports:
    api: int
    tiktok: int
    aws: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Ports:
        return cls(**{name: port_from_env(name, env) for name in DEFAULT_PORTS})

    @classmethod
    def ephemeral(cls) -> Ports:
        """Port 0 everywhere: each server takes a free port (tests)."""
        return cls(api=0, tiktok=0, aws=0)


def url(port: int, host: str = HOST) -> str:
    return f"http://{host}:{port}"


def stack_parameters(api_url: str) -> dict[str, str]:
    """The template parameters of the local deployment. The console served by the gateway is the
    front end, and TikTok (the emulator) redirects the browser back to the gateway's callback."""
    return {
        "Stage": STAGE,
        "JwtIssuer": DEV_JWT_ISSUER,
        "JwtAudience": DEV_JWT_AUDIENCE,
        "FrontendUrl": api_url,
        "FrontendOrigin": api_url,
        "TikTokRedirectUri": f"{api_url}/integrations/tiktok/oauth/callback",
        "TikTokAdsRedirectUri": f"{api_url}/integrations/tiktok-ads/oauth/callback",
        "TikTokLeadsWebhookUrl": f"{api_url}/webhooks/tiktok/leads",
    }


def environment_overrides(tiktok_url: str, aws_url: str) -> dict[str, str]:
    """Variables the local stack sets on top of each function's template environment: TikTok
    is the emulator, AWS is moto, and tracing is off as under ``sam local`` (no X-Ray daemon)."""
    return {
        "TIKTOK_AUTH_URL": f"{tiktok_url}/v2/auth/authorize/",
        "TIKTOK_API_BASE_URL": tiktok_url,
        # The Marketing API (lead forms) is served by the emulator's host too (ads_emulator.py).
        "TIKTOK_ADS_AUTH_URL": f"{tiktok_url}/portal/auth",
        "TIKTOK_BUSINESS_API_BASE_URL": tiktok_url,
        "AWS_ENDPOINT_URL": aws_url,
        "AWS_SAM_LOCAL": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        **AWS_CREDENTIALS,
    }
