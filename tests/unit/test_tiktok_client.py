"""The TikTok client against TikTok's documented payloads: typed errors with log_id, retries only
where a retry is safe, and no token in any repr or error text."""

from __future__ import annotations

from typing import cast

import pytest
import responses
from orcapulse_tiktok.tiktok.client import (
    TikTokClient,
    TikTokGrantError,
    TikTokRequestError,
    TikTokResponseError,
    TikTokTransientError,
)
from orcapulse_tiktok.tiktok.credentials import AppCredentials

API = "https://open.tiktokapis.com"
CREDS = AppCredentials(client_key="ck", client_secret="cs-secret")
TOKEN_OK = {
    "access_token": "act.example12345Example12345Example",
    "expires_in": 86400,
    "open_id": "afd97af1-b87b-48b9-ac98-410aghda5344",
    "refresh_expires_in": 31536000,
    "refresh_token": "rft.example12345Example12345Example",
    "scope": "user.info.basic,video.list",
    "token_type": "Bearer",
}


@pytest.fixture
def client():
    return TikTokClient(API, backoff=0)


@responses.activate
def test_exchange_code_sends_the_documented_form(client):
    responses.post(f"{API}/v2/oauth/token/", json=TOKEN_OK)
    grant = client.exchange_code(CREDS, code="c0de", redirect_uri="https://x.test/cb", code_verifier="v" * 43)
    body = cast(str, responses.calls[0].request.body)
    assert "grant_type=authorization_code" in body
    assert "redirect_uri=https%3A%2F%2Fx.test%2Fcb" in body
    assert "code_verifier=" in body
    assert responses.calls[0].request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert grant.scopes == ("user.info.basic", "video.list")
    assert grant.expires_in == 86400
    assert "act." not in repr(grant)
    assert "rft." not in repr(grant)


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "error_type"),
    [
        (400, {"error": "invalid_grant", "error_description": "expired", "log_id": "LID1"}, TikTokGrantError),
        (200, {"error": "invalid_request", "error_description": "bad", "log_id": "LID2"}, TikTokRequestError),
        (
            429,
            {"error": "rate_limit_exceeded", "error_description": "slow", "log_id": "LID3"},
            TikTokTransientError,
        ),
        (502, {}, TikTokTransientError),
        (200, {"access_token": "act.x", "expires_in": "soon"}, TikTokResponseError),
    ],
)
def test_token_errors_are_typed_and_never_retried(client, status, body, error_type):
    responses.post(f"{API}/v2/oauth/token/", json=body, status=status)
    with pytest.raises(error_type) as info:
        client.refresh(CREDS, "rft.secret-refresh")
    assert len(responses.calls) == 1
    assert "rft.secret-refresh" not in str(info.value)
    assert "cs-secret" not in str(info.value)
    if "log_id" in body:
        assert info.value.log_id == body["log_id"]


@responses.activate
def test_token_endpoint_returning_html_is_a_response_error(client):
    responses.post(f"{API}/v2/oauth/token/", body="<html>oops</html>", status=200)
    with pytest.raises(TikTokResponseError):
        client.exchange_code(CREDS, code="c", redirect_uri="https://x.test/cb", code_verifier=None)


@responses.activate
def test_user_info_retries_then_succeeds(client):
    user = {
        "open_id": "o1",
        "union_id": "u1",
        "display_name": "Tik Toker",
        "avatar_url": "https://a.test/x.jpeg",
    }
    responses.get(f"{API}/v2/user/info/", status=503, json={})
    responses.get(
        f"{API}/v2/user/info/",
        json={"data": {"user": user}, "error": {"code": "ok", "message": "", "log_id": "L"}},
    )
    profile = client.user_info("act.token")
    assert profile.display_name == "Tik Toker"
    assert len(responses.calls) == 2
    assert responses.calls[1].request.headers["Authorization"] == "Bearer act.token"
    assert "fields=open_id%2Cunion_id%2Cavatar_url%2Cdisplay_name" in cast(
        str, responses.calls[1].request.url
    )


@responses.activate
def test_user_info_error_envelope(client):
    responses.get(
        f"{API}/v2/user/info/",
        status=401,
        json={"data": {}, "error": {"code": "access_token_invalid", "message": "bad", "log_id": "L9"}},
    )
    with pytest.raises(TikTokGrantError) as info:
        client.user_info("act.token")
    assert info.value.log_id == "L9"
    assert len(responses.calls) == 1


@responses.activate
def test_revoke_gives_up_after_three_transient_failures(client):
    for _ in range(3):
        responses.post(f"{API}/v2/oauth/revoke/", status=500, json={})
    with pytest.raises(TikTokTransientError):
        client.revoke(CREDS, "act.token")
    assert len(responses.calls) == 3


@responses.activate
def test_revoke_success_is_an_empty_object(client):
    responses.post(f"{API}/v2/oauth/revoke/", json={})
    client.revoke(CREDS, "act.token")
    assert "token=act.token" in cast(str, responses.calls[0].request.body)


def test_stored_tokens_and_app_credentials_hide_their_secrets_in_repr():
    from orcapulse_tiktok.vault import StoredTokens

    tokens = StoredTokens("open-1", ("user.info.basic",), 2, 3, 1, "act.SECRET-A", "rft.SECRET-R")
    creds = AppCredentials(client_key="ck", client_secret="cs-SECRET")
    for text in (repr(tokens), str(tokens), f"{[tokens, creds]}", repr(creds), str(creds)):
        assert "SECRET" not in text
    assert StoredTokens.from_json(tokens.to_json()) == tokens
