"""The TikTok app credentials, read from Secrets Manager and cached per container."""

from __future__ import annotations

from typing import NamedTuple

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import ConfigError, TransientError

# Long enough to save a Secrets Manager call on nearly every request, short enough that a rotated
# client secret is picked up within minutes.
CACHE_SECONDS = 300


class AppCredentials(NamedTuple):
    client_key: str
    client_secret: str

    def __repr__(self) -> str:  # the secret never reaches a log line or a traceback
        return f"AppCredentials(client_key={self.client_key!r}, client_secret='***')"


def app_credentials() -> AppCredentials:
    """The app's ``client_key`` and ``client_secret`` from ``TIKTOK_APP_SECRET_ID``.

    A Secrets Manager failure (throttling, 5xx, timeout) is a ``TransientError``: every caller
    already turns that into its retryable answer."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    secret_id = get_settings().require("app_secret_id")
    try:
        raw = parameters.get_secret(secret_id, transform="json", max_age=CACHE_SECONDS)
    except GetParameterError:
        raise TransientError("The TikTok app credentials are unavailable, try again") from None
    if not isinstance(raw, dict):
        raise ConfigError("TIKTOK_APP_SECRET_ID must hold a JSON object")
    key, secret = raw.get("client_key"), raw.get("client_secret")
    if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
        raise ConfigError("TIKTOK_APP_SECRET_ID must hold non-empty client_key and client_secret")
    return AppCredentials(client_key=key, client_secret=secret)
