"""The TikTok app credentials, read from Secrets Manager and cached per container."""

from __future__ import annotations

from dataclasses import dataclass, field

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import ConfigError

# Long enough to save a Secrets Manager call on nearly every request, short enough that a rotated
# client secret is picked up within minutes.
CACHE_SECONDS = 300


@dataclass(frozen=True)
class AppCredentials:
    client_key: str
    client_secret: str = field(repr=False)


def app_credentials() -> AppCredentials:
    """The app's ``client_key`` and ``client_secret`` from ``TIKTOK_APP_SECRET_ID``."""
    from aws_lambda_powertools.utilities import parameters

    secret_id = get_settings().require("app_secret_id")
    raw = parameters.get_secret(secret_id, transform="json", max_age=CACHE_SECONDS)
    if not isinstance(raw, dict):
        raise ConfigError("TIKTOK_APP_SECRET_ID must hold a JSON object")
    key, secret = raw.get("client_key"), raw.get("client_secret")
    if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
        raise ConfigError("TIKTOK_APP_SECRET_ID must hold non-empty client_key and client_secret")
    return AppCredentials(client_key=key, client_secret=secret)
