"""Configuration is validated once, and a missing or invalid value names its variable."""

from __future__ import annotations

import pytest
from orcapulse_tiktok.config import Settings
from orcapulse_tiktok.errors import ConfigError

from tests.support.deployment import TEST_ENVIRONMENT
from tests.support.events import claims, http_event, json_body


def test_template_environment_parses():
    settings = Settings.from_env(TEST_ENVIRONMENT)
    assert settings.scopes == ("user.info.basic",)
    assert settings.webhook_mode == "live"
    assert settings.webhook_tolerance_seconds == 300
    assert settings.workspace_claim == "custom:workspace_id"
    assert settings.api_base_url == "https://open.tiktokapis.com"


def test_defaults_apply_when_optional_values_are_absent():
    settings = Settings.from_env({})
    assert settings.auth_url == "https://www.tiktok.com/v2/auth/authorize/"
    assert settings.scopes == ("user.info.basic",)
    assert settings.workspace_claim == "custom:workspace_id"
    assert settings.lead_retention_days == 365  # DESIGN §4


def test_lead_retention_comes_from_the_stack_parameter():
    assert Settings.from_env(TEST_ENVIRONMENT).lead_retention_days == 365  # LeadRetentionDays' default
    assert Settings.from_env({"LEAD_RETENTION_DAYS": "30"}).lead_retention_days == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_MODE", "chaos"),
        ("WEBHOOK_TOLERANCE_SECONDS", "soon"),
        ("WEBHOOK_TOLERANCE_SECONDS", "0"),
        ("TIKTOK_API_BASE_URL", "ftp://example.com"),
        ("TIKTOK_AUTH_URL", "tiktok.com/v2/auth/authorize/"),
        ("TIKTOK_REDIRECT_URI", "/relative/callback"),
        ("FRONTEND_URL", "not a url"),
        ("TIKTOK_SCOPES", " , "),
        ("TOKEN_SECRET_PREFIX", "bad prefix!"),
        ("TIKTOK_BUSINESS_API_BASE_URL", "business-api.tiktok.com"),
        ("TIKTOK_BUSINESS_SCOPES", " , "),
        ("LEAD_RETENTION_DAYS", "a year"),
        ("LEAD_RETENTION_DAYS", "0"),
        ("LEAD_RETENTION_DAYS", "3651"),
    ],
)
def test_invalid_values_name_their_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({**TEST_ENVIRONMENT, name: value})


@pytest.mark.parametrize(
    ("field", "variable"),
    [
        ("redirect_uri", "TIKTOK_REDIRECT_URI"),
        ("leads_table", "LEADS_TABLE"),
        ("integrations_table", "INTEGRATIONS_TABLE"),
        ("oauth_states_table", "OAUTH_STATES_TABLE"),
        ("event_bus_name", "EVENT_BUS_NAME"),
        ("app_secret_id", "TIKTOK_APP_SECRET_ID"),
        ("business_app_secret_id", "TIKTOK_BUSINESS_APP_SECRET_ID"),
    ],
)
def test_missing_required_value_names_its_variable(field, variable):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({}).require(field)


def test_handler_reports_missing_configuration_as_500(load_function, lambda_context, aws, monkeypatch):
    from orcapulse_tiktok.config import get_settings

    monkeypatch.delenv("TIKTOK_REDIRECT_URI")
    get_settings.cache_clear()
    module = load_function("oauth_start")
    response = module.lambda_handler(
        http_event("GET", "/integrations/tiktok/oauth/start", jwt_claims=claims()), lambda_context
    )
    assert response["statusCode"] == 500
    error = json_body(response)["error"]
    assert error["code"] == "configuration_error"
    assert "TIKTOK_REDIRECT_URI" in error["message"]
    get_settings.cache_clear()


def test_every_documented_variable_is_read_as_written():
    """DESIGN.md §4, name for name: an independent caller configures the functions this way."""
    env = {
        "TIKTOK_APP_SECRET_ID": "app/secret",
        "TIKTOK_REDIRECT_URI": "https://api.example.test/integrations/tiktok/oauth/callback",
        "TIKTOK_SCOPES": "user.info.basic,video.list",
        "TIKTOK_AUTH_URL": "http://127.0.0.1:3001/v2/auth/authorize/",
        "TIKTOK_API_BASE_URL": "http://127.0.0.1:3001",
        "FRONTEND_URL": "https://app.example.test",
        "WEBHOOK_MODE": "sandbox",
        "WEBHOOK_TOLERANCE_SECONDS": "120",
        "WORKSPACE_CLAIM": "org_id",
        "EVENT_BUS_NAME": "leads-bus",
        "INTEGRATIONS_TABLE": "integrations",
        "OAUTH_STATES_TABLE": "oauth-states",
        "LEADS_TABLE": "leads",
    }
    settings = Settings.from_env(env)
    assert settings.app_secret_id == "app/secret"
    assert settings.redirect_uri == env["TIKTOK_REDIRECT_URI"]
    assert settings.scopes == ("user.info.basic", "video.list")
    assert settings.auth_url == env["TIKTOK_AUTH_URL"]
    assert settings.api_base_url == "http://127.0.0.1:3001"
    assert settings.frontend_url == "https://app.example.test"
    assert settings.webhook_mode == "sandbox"
    assert settings.webhook_tolerance_seconds == 120
    assert settings.workspace_claim == "org_id"
    assert (settings.event_bus_name, settings.integrations_table) == ("leads-bus", "integrations")
    assert (settings.oauth_states_table, settings.leads_table) == ("oauth-states", "leads")


def test_business_variables_are_read_as_written_and_default_per_design():
    """DESIGN §4/§8: the TikTok API for Business app, its API base and the business scopes."""
    defaults = Settings.from_env({})
    assert defaults.business_api_base_url == "https://business-api.tiktok.com"
    assert set(defaults.business_scopes) == {
        "user.info.basic",
        "user.info.username",
        "user.account.type",
        "message.list.read",
        "message.list.send",
        "message.list.manage",
        "comment.list",
        "comment.list.manage",
    }
    settings = Settings.from_env(
        {
            "TIKTOK_BUSINESS_APP_SECRET_ID": "business/app",
            "TIKTOK_BUSINESS_API_BASE_URL": "http://127.0.0.1:3001/",
            "TIKTOK_BUSINESS_SCOPES": "user.info.basic, comment.list,message.list.read",
        }
    )
    assert settings.business_app_secret_id == "business/app"
    assert settings.business_api_base_url == "http://127.0.0.1:3001"
    assert settings.business_scopes == ("user.info.basic", "comment.list", "message.list.read")
    assert TEST_ENVIRONMENT["TIKTOK_BUSINESS_API_BASE_URL"] == "https://business-api.tiktok.com"
    assert TEST_ENVIRONMENT["TIKTOK_BUSINESS_APP_SECRET_ID"].endswith("/business-app")


def test_operating_variables_default_and_validate():
    """DESIGN §4/§11: the delivery archive's retention (default 7 days) and the optional
    customer-managed key; the template passes both."""
    defaults = Settings.from_env({})
    assert defaults.delivery_retention_days == 7
    assert defaults.data_kms_key_id is None
    assert TEST_ENVIRONMENT["DELIVERY_RETENTION_DAYS"] == "7"
    assert Settings.from_env(TEST_ENVIRONMENT).deliveries_table == TEST_ENVIRONMENT["DELIVERIES_TABLE"]
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    settings = Settings.from_env({"DELIVERY_RETENTION_DAYS": "30", "DATA_KMS_KEY_ID": key})
    assert (settings.delivery_retention_days, settings.data_kms_key_id) == (30, key)
    for name, value in [
        ("DELIVERY_RETENTION_DAYS", "0"),
        ("DELIVERY_RETENTION_DAYS", "a week"),
        ("DATA_KMS_KEY_ID", "alias/x"),
    ]:
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})
    with pytest.raises(ConfigError, match="DELIVERIES_TABLE"):
        Settings.from_env({}).require("deliveries_table")
