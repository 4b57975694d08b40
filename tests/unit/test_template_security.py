"""Security properties of template.yaml, checked as tests: who can call what, and least privilege."""

from __future__ import annotations

from pathlib import Path

from orcapulse_local.template import function_spec, http_routes, resources_of_type
from tests.support.deployment import TEMPLATE

ROOT = Path(__file__).resolve().parents[2]

# TikTok calls these (the browser comes back from TikTok; TikTok posts deliveries): the lead-form
# ones are the advertiser callback and the Marketing API's webhook (DESIGN §10).
PUBLIC = {
    ("GET", "/integrations/tiktok/oauth/callback"),
    ("POST", "/webhooks/tiktok"),
    ("GET", "/integrations/tiktok-ads/oauth/callback"),
    ("POST", "/webhooks/tiktok/leads"),
}


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


def _resources(statement):
    resources = statement["Resource"]
    return resources if isinstance(resources, list) else [resources]


def _text(value) -> str:
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return str(value["Fn::Sub"])
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        return ".".join(value["Fn::GetAtt"]) if isinstance(value["Fn::GetAtt"], list) else value["Fn::GetAtt"]
    return str(value)


def test_wildcards_only_where_no_narrower_resource_exists():
    """A ``*`` inside an ARN is allowed only for what the template cannot name: the token secrets,
    created at run time one per integration under their prefix, and the archive's S3 bodies, one
    object per delivery id under theirs (object actions only). Tables, indexes, buses, queues
    and the app's own secrets all exist in the template, so policies name them."""
    for logical in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        for statement in _statements(function_spec(TEMPLATE, logical)):
            for resource in _resources(statement):
                text = _text(resource)
                if "*" not in text:
                    continue
                if text == "${DeliveryBodiesBucket.Arn}/deliveries/*":
                    assert set(statement["Action"]) <= {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}
                    continue
                assert text.endswith(":secret:orcapulse/tiktok/${Stage}/tokens/*"), (logical, text)
                assert set(statement["Action"]) <= {
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:CreateSecret",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:DeleteSecret",
                    "secretsmanager:TagResource",
                }, (logical, statement["Action"])


def test_every_granted_index_exists_on_its_table():
    tables = resources_of_type(TEMPLATE, "AWS::DynamoDB::Table")
    for logical in resources_of_type(TEMPLATE, "AWS::Serverless::Function"):
        for statement in _statements(function_spec(TEMPLATE, logical)):
            for resource in _resources(statement):
                text = _text(resource)
                if "/index/" not in text:
                    continue
                table, index = text.removeprefix("${").split(".Arn}/index/")
                props = tables[table]["Properties"]
                names = {
                    i["IndexName"]
                    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
                    for i in props.get(kind, [])
                }
                assert index in names, (logical, text)


def test_only_the_user_routes_and_nothing_else_trust_the_jwt_claims():
    """Functions behind the authorizer read the caller from its claims; the public ones (callback,
    webhook) never do, since anyone can reach them."""
    routes = http_routes(TEMPLATE)
    public_functions = {r.function for r in routes if not r.authorized}
    user_functions = {r.function for r in routes if r.authorized}
    assert not public_functions & user_functions
    for logical in public_functions:
        code = (ROOT / function_spec(TEMPLATE, logical)["CodeUri"] / "app.py").read_text()
        assert "current_caller" not in code, logical
    for logical in user_functions:
        code = (ROOT / function_spec(TEMPLATE, logical)["CodeUri"] / "app.py").read_text()
        assert "current_caller(app)" in code, logical


def test_the_read_api_may_query_exactly_the_listing_and_timeline_indexes():
    """The leads table is read by key (GetItem) and through its two read indexes only: never a
    Query of the base table, never a Scan, never a write."""
    from orcapulse_tiktok.data import lead_queries as leads

    statements = list(_statements(function_spec(TEMPLATE, "LeadsQueryFunction")))
    on_leads = [
        (action, _text(resource))
        for statement in statements
        for action in statement["Action"]
        for resource in _resources(statement)
        if "LeadsTable" in _text(resource)
    ]
    queried = {text.rsplit("/index/", 1)[1] for action, text in on_leads if action == "dynamodb:Query"}
    assert queried == {leads.ACTIVITY_INDEX, leads.TIME_INDEX} == {"by_activity", "by_time"}
    assert all("/index/" in text for action, text in on_leads if action == "dynamodb:Query")
    assert {action for action, _ in on_leads} == {"dynamodb:GetItem", "dynamodb:Query"}
