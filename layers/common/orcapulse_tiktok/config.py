"""Function configuration: parsed and validated once per cold start from the environment.

Every value is validated when the settings are loaded; a value a function needs but the
environment lacks fails with a ``ConfigError`` that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

from orcapulse_tiktok.errors import ConfigError

DEFAULT_AUTH_URL = "https://www.tiktok.com/v2/auth/authorize/"
DEFAULT_API_BASE_URL = "https://open.tiktokapis.com"
DEFAULT_SCOPES = "user.info.basic"
DEFAULT_BUSINESS_API_BASE_URL = "https://business-api.tiktok.com"
# DESIGN §8: the three the product cannot work without, and what a business inbox also uses.
DEFAULT_BUSINESS_SCOPES = (
    "user.info.basic,user.info.username,user.account.type,message.list.read,message.list.send,"
    "message.list.manage,comment.list,comment.list.manage"
)
DEFAULT_ADS_AUTH_URL = "https://business-api.tiktok.com/portal/auth"
DEFAULT_WORKSPACE_CLAIM = "custom:workspace_id"
DEFAULT_LEAD_RETENTION_DAYS = 365
MAX_LEAD_RETENTION_DAYS = 3650  # ten years: a DynamoDB TTL horizon, not "forever"
WEBHOOK_MODES = ("live", "sandbox")
DEFAULT_DELIVERY_RETENTION_DAYS = 7
MAX_DELIVERY_RETENTION_DAYS = 90


def _url(env: Mapping[str, str], name: str, default: str | None = None) -> str | None:
    value = env.get(name, default)
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an absolute http(s) URL")
    return value


def _scopes(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    scopes = tuple(s.strip() for s in env.get(name, default).split(",") if s.strip())
    if not scopes:
        raise ConfigError(f"{name} must name at least one scope")
    return scopes


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}")
    return value


def _lead_region(env: Mapping[str, str]) -> str | None:
    region = env.get("TIKTOK_LEAD_REGION", "")
    if region not in ("", "eu", "us"):
        raise ConfigError("TIKTOK_LEAD_REGION must be eu, us or empty")
    return region or None


def _kms_key(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if not value.startswith("arn:") or ":kms:" not in value or len(value) > 2048:
        raise ConfigError(f"{name} must be a KMS key ARN (or empty)")
    return value


class Settings(NamedTuple):
    """The validated environment of a function. Optional values are read through ``require``."""

    app_secret_id: str | None
    redirect_uri: str | None
    scopes: tuple[str, ...]
    auth_url: str
    api_base_url: str
    frontend_url: str | None
    webhook_mode: str
    webhook_tolerance_seconds: int
    workspace_claim: str
    event_bus_name: str | None
    integrations_table: str | None
    oauth_states_table: str | None
    leads_table: str | None
    token_secret_prefix: str
    cursor_key_secret_id: str | None
    person_key_secret_id: str | None
    refresh_margin_seconds: int
    business_app_secret_id: str | None = None
    business_api_base_url: str = DEFAULT_BUSINESS_API_BASE_URL
    business_scopes: tuple[str, ...] = tuple(DEFAULT_BUSINESS_SCOPES.split(","))
    lead_retention_days: int = DEFAULT_LEAD_RETENTION_DAYS
    # Lead forms (DESIGN §10): the advertiser consent page, its callback, and the URL TikTok
    # delivers leads to (sent as ``callback_url`` when subscribing).
    ads_auth_url: str = DEFAULT_ADS_AUTH_URL
    ads_redirect_uri: str | None = None
    leads_webhook_url: str | None = None
    # ``x-lead-region`` for the lead download task: ``eu`` for EEA/Swiss/UK lead data (the docs).
    lead_region: str | None = None
    # DESIGN section 11: the delivery archive, and the optional customer-managed key of the data.
    deliveries_table: str | None = None
    # The S3 bucket of archived bodies too large for a DynamoDB item (lead forms).
    delivery_bodies_bucket: str | None = None
    delivery_retention_days: int = DEFAULT_DELIVERY_RETENTION_DAYS
    data_kms_key_id: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        scopes = _scopes(env, "TIKTOK_SCOPES", DEFAULT_SCOPES)
        mode = env.get("WEBHOOK_MODE", "live") or "live"
        if mode not in WEBHOOK_MODES:
            raise ConfigError(f"WEBHOOK_MODE must be one of {', '.join(WEBHOOK_MODES)}")
        prefix = env.get("TOKEN_SECRET_PREFIX", "orcapulse/tiktok/tokens/")
        if not prefix or any(not (c.isalnum() or c in "/_+=.@-") for c in prefix):
            raise ConfigError("TOKEN_SECRET_PREFIX must be a Secrets Manager name prefix")
        return cls(
            app_secret_id=env.get("TIKTOK_APP_SECRET_ID") or None,
            redirect_uri=_url(env, "TIKTOK_REDIRECT_URI"),
            scopes=scopes,
            auth_url=_url(env, "TIKTOK_AUTH_URL", DEFAULT_AUTH_URL) or DEFAULT_AUTH_URL,
            api_base_url=(
                _url(env, "TIKTOK_API_BASE_URL", DEFAULT_API_BASE_URL) or DEFAULT_API_BASE_URL
            ).rstrip("/"),
            frontend_url=(_url(env, "FRONTEND_URL") or "").rstrip("/") or None,
            webhook_mode=mode,
            webhook_tolerance_seconds=_int(env, "WEBHOOK_TOLERANCE_SECONDS", 300, 1, 3600),
            workspace_claim=env.get("WORKSPACE_CLAIM") or DEFAULT_WORKSPACE_CLAIM,
            event_bus_name=env.get("EVENT_BUS_NAME") or None,
            integrations_table=env.get("INTEGRATIONS_TABLE") or None,
            oauth_states_table=env.get("OAUTH_STATES_TABLE") or None,
            leads_table=env.get("LEADS_TABLE") or None,
            token_secret_prefix=prefix,
            cursor_key_secret_id=env.get("CURSOR_KEY_SECRET_ID") or None,
            person_key_secret_id=env.get("PERSON_KEY_SECRET_ID") or None,
            refresh_margin_seconds=_int(env, "TOKEN_REFRESH_MARGIN_SECONDS", 3600, 60, 86400),
            business_app_secret_id=env.get("TIKTOK_BUSINESS_APP_SECRET_ID") or None,
            business_api_base_url=(
                _url(env, "TIKTOK_BUSINESS_API_BASE_URL", DEFAULT_BUSINESS_API_BASE_URL)
                or DEFAULT_BUSINESS_API_BASE_URL
            ).rstrip("/"),
            business_scopes=_scopes(env, "TIKTOK_BUSINESS_SCOPES", DEFAULT_BUSINESS_SCOPES),
            lead_retention_days=_int(
                env, "LEAD_RETENTION_DAYS", DEFAULT_LEAD_RETENTION_DAYS, 1, MAX_LEAD_RETENTION_DAYS
            ),
            ads_auth_url=_url(env, "TIKTOK_ADS_AUTH_URL", DEFAULT_ADS_AUTH_URL) or DEFAULT_ADS_AUTH_URL,
            ads_redirect_uri=_url(env, "TIKTOK_ADS_REDIRECT_URI"),
            leads_webhook_url=_url(env, "TIKTOK_LEADS_WEBHOOK_URL"),
            lead_region=_lead_region(env),
            deliveries_table=env.get("DELIVERIES_TABLE") or None,
            delivery_bodies_bucket=env.get("DELIVERY_BODIES_BUCKET") or None,
            delivery_retention_days=_int(
                env,
                "DELIVERY_RETENTION_DAYS",
                DEFAULT_DELIVERY_RETENTION_DAYS,
                1,
                MAX_DELIVERY_RETENTION_DAYS,
            ),
            data_kms_key_id=_kms_key(env, "DATA_KMS_KEY_ID"),
        )

    def require(self, field: str) -> str:
        """Return an optional setting the caller cannot work without, or fail naming its variable."""
        value = getattr(self, field)
        if not value:
            raise ConfigError(f"{_ENV_NAMES[field]} is not set")
        return str(value)


_ENV_NAMES = {
    "app_secret_id": "TIKTOK_APP_SECRET_ID",  # a variable's name, not a secret  # nosec B105
    "redirect_uri": "TIKTOK_REDIRECT_URI",
    "frontend_url": "FRONTEND_URL",
    "event_bus_name": "EVENT_BUS_NAME",
    "integrations_table": "INTEGRATIONS_TABLE",
    "oauth_states_table": "OAUTH_STATES_TABLE",
    "leads_table": "LEADS_TABLE",
    "cursor_key_secret_id": "CURSOR_KEY_SECRET_ID",  # a variable's name, not a secret  # nosec B105
    "person_key_secret_id": "PERSON_KEY_SECRET_ID",  # a variable's name, not a secret  # nosec B105
    "business_app_secret_id": "TIKTOK_BUSINESS_APP_SECRET_ID",  # a variable's name  # nosec B105
    "deliveries_table": "DELIVERIES_TABLE",
    "delivery_bodies_bucket": "DELIVERY_BODIES_BUCKET",
    "ads_redirect_uri": "TIKTOK_ADS_REDIRECT_URI",
    "leads_webhook_url": "TIKTOK_LEADS_WEBHOOK_URL",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this container, parsed on first use (tests call ``get_settings.cache_clear``)."""
    return Settings.from_env(os.environ)
