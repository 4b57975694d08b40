"""The test deployment: stack parameters and the environment every function gets, resolved from
``template.yaml`` exactly as CloudFormation would resolve it."""

from __future__ import annotations

from typing import Any

from orcapulse_local.template import (
    Context,
    create_table_kwargs,
    deployment_context,
    function_environment,
    load_template,
    resources_of_type,
)

FRONTEND_URL = "https://app.orcapulse.test"
REDIRECT_URI = "https://api.orcapulse.test/integrations/tiktok/oauth/callback"
ADS_REDIRECT_URI = "https://api.orcapulse.test/integrations/tiktok-ads/oauth/callback"
LEADS_WEBHOOK_URL = "https://api.orcapulse.test/webhooks/tiktok/leads"
PARAMETERS = {
    "Stage": "test",
    "JwtIssuer": "https://issuer.orcapulse.test",
    "JwtAudience": "orcapulse-web",
    "FrontendUrl": FRONTEND_URL,
    "FrontendOrigin": FRONTEND_URL,
    "TikTokRedirectUri": REDIRECT_URI,
    "TikTokAdsRedirectUri": ADS_REDIRECT_URI,
    "TikTokLeadsWebhookUrl": LEADS_WEBHOOK_URL,
}

TEMPLATE = load_template()
CONTEXT: Context = deployment_context(TEMPLATE, PARAMETERS)
# Globals give every function the same variables; a function's own ones are layered on per test.
TEST_ENVIRONMENT = function_environment(TEMPLATE, "OAuthStartFunction", CONTEXT)


def table_kwargs() -> list[dict[str, Any]]:
    return [
        create_table_kwargs(spec["Properties"], CONTEXT)
        for spec in resources_of_type(TEMPLATE, "AWS::DynamoDB::Table").values()
    ]


def function_env(logical_id: str) -> dict[str, str]:
    return function_environment(TEMPLATE, logical_id, CONTEXT)
