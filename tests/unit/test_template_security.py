"""Security properties of template.yaml, checked as tests: who can call what, and least privilege."""

from __future__ import annotations

from orcapulse_local.template import function_spec, http_routes, resources_of_type
from tests.support.deployment import TEMPLATE

PUBLIC = {("GET", "/integrations/tiktok/oauth/callback"), ("POST", "/webhooks/tiktok")}


def test_only_the_callback_and_the_webhook_are_public():
    routes = http_routes(TEMPLATE)
    assert {(r.method, r.path) for r in routes if not r.authorized} == PUBLIC
    assert all(r.authorized for r in routes if (r.method, r.path) not in PUBLIC)


def test_the_api_uses_a_jwt_authorizer_with_issuer_and_audience_parameters():
    [api] = resources_of_type(TEMPLATE, "AWS::Serverless::HttpApi").values()
    auth = api["Properties"]["Auth"]
    authorizer = auth["Authorizers"][auth["DefaultAuthorizer"]]
    assert authorizer["JwtConfiguration"] == {
        "issuer": {"Ref": "JwtIssuer"},
        "audience": {"Ref": "JwtAudience"},
    }
    assert authorizer["IdentitySource"] == "$request.header.Authorization"


def test_cors_allows_only_the_front_end_origin():
    [api] = resources_of_type(TEMPLATE, "AWS::Serverless::HttpApi").values()
    cors = api["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == [{"Ref": "FrontendOrigin"}]
    assert "*" not in str(cors["AllowHeaders"])


def _statements(spec):
    for policy in spec.get("Policies", []):
        if isinstance(policy, dict) and "Statement" in policy:
            yield from policy["Statement"]


def test_no_policy_grants_everything():
    for logical in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        spec = function_spec(TEMPLATE, logical)
        statements = list(_statements(spec))
        assert statements, f"{logical} has no inline least-privilege policy"
        for statement in statements:
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert "*" not in resources, logical
            assert all(not a.endswith(":*") and a != "*" for a in actions), logical


def test_token_secrets_are_reachable_only_under_their_prefix():
    for logical in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        for statement in _statements(function_spec(TEMPLATE, logical)):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(a in ("secretsmanager:PutSecretValue", "secretsmanager:DeleteSecret") for a in actions):
                assert "/tokens/*" in str(statement["Resource"]), logical


def test_traces_never_capture_responses_or_errors():
    env = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    assert env["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false"
    assert env["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false"
