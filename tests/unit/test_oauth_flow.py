"""Connect: OAuth start and callback, end to end through the handlers (moto + fake TikTok)."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support.deployment import FRONTEND_URL, REDIRECT_URI
from tests.support.events import claims, http_event, json_body
from tests.support.faults import aws_calls

START = "/integrations/tiktok/oauth/start"
CALLBACK = "/integrations/tiktok/oauth/callback"


@pytest.fixture
def start(load_function, lambda_context, aws):
    module = load_function("oauth_start")

    def call(jwt_claims=None, query=None):
        event = http_event(
            "GET", START, query=query, jwt_claims=jwt_claims if jwt_claims is not None else claims()
        )
        return module.lambda_handler(event, lambda_context)

    return call


@pytest.fixture
def callback(load_function, lambda_context, aws):
    module = load_function("oauth_callback")

    def call(query):
        return module.lambda_handler(http_event("GET", CALLBACK, query=query), lambda_context)

    return call


def redirect_query(response) -> dict[str, str]:
    assert response["statusCode"] == 302
    location = response["headers"]["Location"]
    assert location.startswith(f"{FRONTEND_URL}/integrations/tiktok?")
    return dict(parse_qsl(urlsplit(location).query))


def test_start_returns_authorize_url_with_pkce(start, tiktok_state):
    response = start()
    assert response["statusCode"] == 200
    body = json_body(response)
    url = urlsplit(body["authorize_url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://www.tiktok.com/v2/auth/authorize/"
    query = dict(parse_qsl(url.query))
    assert query["client_key"] == tiktok_state.client_key
    assert query["redirect_uri"] == REDIRECT_URI
    assert query["response_type"] == "code"
    assert query["scope"] == "user.info.basic"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 64
    assert int(query["code_challenge"], 16) >= 0
    assert len(query["state"]) >= 43
    assert body["expires_at"].endswith("Z")


def test_connect_stores_tokens_only_in_secrets_manager(start, callback, tiktok, aws):
    url = json_body(start(claims(user="u-7", workspace="ws-a")))["authorize_url"]
    query = redirect_query(callback(tiktok.approve(url, "open-id-alpha")))
    assert query["status"] == "connected"
    integration_id = query["integration_id"]

    [item] = aws.items("IntegrationsTable")
    assert item["integration_id"]["S"] == integration_id
    assert item["workspace_id"]["S"] == "ws-a"
    assert item["status"]["S"] == "active"
    assert item["connected_by"]["S"] == "u-7"
    assert item["display_name"]["S"] == "Alpha Shop"
    secrets = aws.token_secrets()
    assert list(secrets) == [integration_id]
    stored = secrets[integration_id]
    assert stored["access_token"].startswith("act.")
    assert stored["refresh_token"].startswith("rft.")
    dumped = str(aws.items("IntegrationsTable")) + str(aws.items("OAuthStatesTable"))
    assert stored["access_token"] not in dumped
    assert stored["refresh_token"] not in dumped
    assert aws.items("OAuthStatesTable") == []  # the state was spent


@pytest.mark.parametrize(("expires_in", "margin"), [(86400, 3600), (7200, 3600), (3600, 1800)])
def test_connect_schedules_the_refresh_as_the_token_service_does(
    start, callback, tiktok, tiktok_state, aws, expires_in, margin
):
    """Due ``TOKEN_REFRESH_MARGIN_SECONDS`` (1 h) before expiry, never before half the lifetime."""
    tiktok_state.expires_in = expires_in
    url = json_body(start())["authorize_url"]
    assert redirect_query(callback(tiktok.approve(url, "open-id-alpha")))["status"] == "connected"
    [item] = aws.items("IntegrationsTable")
    [stored] = aws.token_secrets().values()
    assert int(item["refresh_due_at"]["N"]) == stored["access_expires_at"] - margin
    assert item["refresh_bucket"]["S"] == "tiktok"


def test_state_cannot_be_replayed(start, callback, tiktok, aws):
    url = json_body(start())["authorize_url"]
    params = tiktok.approve(url, "open-id-alpha")
    assert redirect_query(callback(params))["status"] == "connected"
    assert redirect_query(callback(params)) == {"status": "error", "reason": "invalid_state"}


def test_access_denied_stores_nothing(start, callback, tiktok, aws):
    url = json_body(start())["authorize_url"]
    state = dict(parse_qsl(urlsplit(url).query))["state"]
    query = {"error": "access_denied", "error_description": "The user denied the request", "state": state}
    assert redirect_query(callback(query)) == {"status": "error", "reason": "access_denied"}
    assert aws.items("IntegrationsTable") == []
    assert aws.token_secrets() == {}
    assert tiktok.calls["token"] == 0


# -- OAuth start: caller and parameters -------------------------------------------------------------


def test_start_without_authorizer_context_is_401(load_function, lambda_context, aws):
    module = load_function("oauth_start")
    response = module.lambda_handler(http_event("GET", START), lambda_context)
    assert response["statusCode"] == 401
    assert json_body(response)["error"]["code"] == "unauthorized"


def test_start_without_workspace_claim_is_403(start):
    response = start(claims(workspace=None))
    assert response["statusCode"] == 403
    assert json_body(response)["error"]["code"] == "workspace_required"


def test_start_with_redirect_true_is_302_to_tiktok(start):
    response = start(query={"redirect": "true"})
    assert response["statusCode"] == 302
    assert response["headers"]["Location"].startswith("https://www.tiktok.com/v2/auth/authorize/?")


def test_start_with_bad_redirect_value_is_400(start, aws):
    response = start(query={"redirect": "maybe"})
    assert response["statusCode"] == 400
    assert json_body(response)["error"]["code"] == "invalid_parameter"
    assert aws.items("OAuthStatesTable") == []


def test_state_is_stored_hashed_bound_and_short_lived(start, aws):
    url = json_body(start(claims(user="u-9", workspace="ws-z")))["authorize_url"]
    state = dict(parse_qsl(urlsplit(url).query))["state"]
    [item] = aws.items("OAuthStatesTable")
    assert state not in str(item)
    assert item["user_id"]["S"] == "u-9"
    assert item["workspace_id"]["S"] == "ws-z"
    assert int(item["expires_at"]["N"]) - time.time() <= 600


# -- OAuth callback: every failure redirects with its reason and stores nothing ----------------------


def assert_nothing_stored(aws):
    assert aws.items("IntegrationsTable") == []
    assert aws.token_secrets() == {}


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"code": "abc", "scopes": "user.info.basic"},
        {"code": "abc", "scopes": "user.info.basic", "state": "not-a-state-we-issued"},
        {"code": "abc", "scopes": "user.info.basic", "state": "x" * 5000},
    ],
)
def test_callback_with_missing_or_unknown_state(callback, tiktok, aws, query):
    assert redirect_query(callback(query)) == {"status": "error", "reason": "invalid_state"}
    assert_nothing_stored(aws)
    assert tiktok.calls["token"] == 0


def test_expired_state_is_refused_even_before_ttl_deletes_it(start, callback, tiktok, aws, monkeypatch):
    from orcapulse_tiktok import clock

    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")
    later = time.time() + 601
    monkeypatch.setattr(clock, "now", lambda: later)
    assert redirect_query(callback(params)) == {"status": "error", "reason": "invalid_state"}
    assert_nothing_stored(aws)


def test_callback_headers_forbid_caching_and_referrer(start, callback, tiktok):
    response = callback(tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha"))
    assert response["headers"]["Cache-Control"] == "no-store"
    assert response["headers"]["Referrer-Policy"] == "no-referrer"


def test_error_without_state_is_access_denied(callback, aws):
    query = {"error": "access_denied", "error_description": "The user denied the request"}
    assert redirect_query(callback(query)) == {"status": "error", "reason": "access_denied"}
    assert_nothing_stored(aws)


def test_scopes_not_granted_in_callback(start, callback, tiktok, aws):
    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha", granted_scopes="video.list")
    assert redirect_query(callback(params)) == {"status": "error", "reason": "missing_scope"}
    assert tiktok.calls["token"] == 0
    assert_nothing_stored(aws)


def test_scope_missing_from_token_response_revokes_the_token(start, callback, tiktok, aws):
    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha", granted_scopes="video.list")
    params["scopes"] = "user.info.basic"  # the browser claims more than the grant holds
    assert redirect_query(callback(params)) == {"status": "error", "reason": "missing_scope"}
    assert tiktok.calls["revoke"] == 1
    assert tiktok.state.revoked == ["open-id-alpha"]
    assert_nothing_stored(aws)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "Authorization code is expired.", "log_id": "L1"},
        ),
        (500, {}),
        (200, {"access_token": "act.partial"}),
    ],
)
def test_token_exchange_failure(start, callback, tiktok, aws, status, body):
    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")
    tiktok.state.fail_next("token", status=status, body=body)
    assert redirect_query(callback(params)) == {"status": "error", "reason": "token_exchange_failed"}
    assert tiktok.calls["token"] == 1  # never retried: the code is single-use
    assert_nothing_stored(aws)


def test_token_exchange_timeout(start, callback, tiktok, aws):
    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")
    tiktok.state.timeout_next("token")
    assert redirect_query(callback(params)) == {"status": "error", "reason": "token_exchange_failed"}
    assert_nothing_stored(aws)


def test_wrong_pkce_verifier_is_refused_by_tiktok(start, callback, tiktok, aws):
    url = json_body(start())["authorize_url"]
    params = tiktok.approve(url, "open-id-alpha")
    code = tiktok.state.codes[params["code"]]
    code["code_challenge"] = "0" * 64  # as if the authorize request had carried another challenge
    assert redirect_query(callback(params)) == {"status": "error", "reason": "token_exchange_failed"}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"data": {}, "error": {"code": "scope_not_authorized", "message": "no", "log_id": "L2"}}),
        (429, {"data": {}, "error": {"code": "rate_limit_exceeded", "message": "slow", "log_id": "L3"}}),
        (200, {"data": {"user": {}}, "error": {"code": "ok", "message": "", "log_id": "L4"}}),
    ],
)
def test_profile_fetch_failure_revokes_and_stores_nothing(start, callback, tiktok, aws, status, body):
    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")
    tiktok.state.fail_next("user_info", status=status, body=body, times=3)
    assert redirect_query(callback(params)) == {"status": "error", "reason": "profile_fetch_failed"}
    assert tiktok.state.revoked == ["open-id-alpha"]
    assert_nothing_stored(aws)


def test_profile_fetch_retries_a_transient_error(start, callback, tiktok, aws):
    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")
    tiktok.state.fail_next("user_info", status=503, body={})
    assert redirect_query(callback(params))["status"] == "connected"
    assert tiktok.calls["user_info"] == 2


def test_vault_failure_revokes_and_stores_nothing(start, callback, tiktok, aws):
    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")
    with aws_calls(fail={"CreateSecret": 1}, code="InternalServiceError", status=500):
        assert redirect_query(callback(params)) == {"status": "error", "reason": "internal_error"}
    assert tiktok.state.revoked == ["open-id-alpha"]
    assert_nothing_stored(aws)


def test_record_failure_rolls_back_a_new_secret(start, callback, tiktok, aws):
    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")
    with aws_calls(fail={"UpdateItem": 1}, code="ProvisionedThroughputExceededException"):
        assert redirect_query(callback(params)) == {"status": "error", "reason": "internal_error"}
    assert tiktok.state.revoked == ["open-id-alpha"]
    assert_nothing_stored(aws)


def test_record_failure_on_reconnect_restores_the_previous_tokens(start, callback, tiktok, aws):
    first = redirect_query(callback(tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")))
    before = aws.token_secrets()
    params = tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")
    with aws_calls(fail={"UpdateItem": 1}, code="ProvisionedThroughputExceededException"):
        assert redirect_query(callback(params))["reason"] == "internal_error"
    assert aws.token_secrets() == before
    [item] = aws.items("IntegrationsTable")
    assert item["integration_id"]["S"] == first["integration_id"]


def test_reconnect_keeps_the_integration_id(start, callback, tiktok, aws):
    one = redirect_query(callback(tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")))
    two = redirect_query(callback(tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha")))
    other_ws = redirect_query(
        callback(tiktok.approve(json_body(start(claims(workspace="ws-2")))["authorize_url"], "open-id-alpha"))
    )
    assert one["integration_id"] == two["integration_id"] != other_ws["integration_id"]
    assert len(aws.items("IntegrationsTable")) == 2


def test_no_token_reaches_a_response_or_a_table(start, callback, tiktok, aws):
    response = callback(tiktok.approve(json_body(start())["authorize_url"], "open-id-alpha"))
    everything = (
        json.dumps(response) + str(aws.items("IntegrationsTable")) + str(aws.items("OAuthStatesTable"))
    )
    for secret in [*tiktok.state.issued, tiktok.state.client_secret]:
        assert secret not in everything
