"""Connect: OAuth start and callback, end to end through the handlers (moto + fake TikTok)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support.deployment import FRONTEND_URL, REDIRECT_URI
from tests.support.events import claims, http_event, json_body

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
