"""The TikTok app credentials, read from Secrets Manager and cached per container."""

from __future__ import annotations

from typing import NamedTuple

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import secrets
from orcapulse_tiktok.errors import ConfigError

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

    A Secrets Manager failure is classified by ``data.faults``: throttling, 5xx and timeouts are a
    ``TransientError`` every caller turns into its retryable answer; access denied or a missing
    secret is ``DependencyMisconfigured``."""
    raw = secrets.cached_secret(get_settings().require("app_secret_id"), max_age=CACHE_SECONDS, json=True)
    if not isinstance(raw, dict):
        raise ConfigError("TIKTOK_APP_SECRET_ID must hold a JSON object")
    key, secret = raw.get("client_key"), raw.get("client_secret")
    if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
        raise ConfigError("TIKTOK_APP_SECRET_ID must hold non-empty client_key and client_secret")
    return AppCredentials(client_key=key, client_secret=secret)


def business_app_credentials() -> AppCredentials:
    """The TikTok API for Business app's credentials from ``TIKTOK_BUSINESS_APP_SECRET_ID`` (JSON
    ``{"app_id", "secret"}``). The ``app_id`` is the Accounts API's ``client_key``/``client_id`` and
    the ``client_key`` of its webhook deliveries, so it comes back as an ``AppCredentials``."""
    raw = secrets.cached_secret(
        get_settings().require("business_app_secret_id"), max_age=CACHE_SECONDS, json=True
    )
    if not isinstance(raw, dict):
        raise ConfigError("TIKTOK_BUSINESS_APP_SECRET_ID must hold a JSON object")
    app_id, secret = raw.get("app_id"), raw.get("secret")
    if not isinstance(app_id, str) or not app_id or not isinstance(secret, str) or not secret:
        raise ConfigError("TIKTOK_BUSINESS_APP_SECRET_ID must hold non-empty app_id and secret")
    return AppCredentials(client_key=app_id, client_secret=secret)
