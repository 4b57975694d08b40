"""GET /integrations: the workspace's connected accounts with profile and status — never a
token, a secret name or token bookkeeping."""

from __future__ import annotations

import json
from typing import cast
from urllib.parse import parse_qsl, urlsplit

import pytest
from orcapulse_tiktok.models.integration import integration_id_for, integrations
from orcapulse_tiktok.schemas import IntegrationListOut

from tests.support.events import claims, http_event, json_body
from tests.support.leads import ReadApi

PUBLIC_FIELDS = {
    "integration_id",
    "platform",
    "status",
    "open_id",
    "union_id",
    "display_name",
    "avatar_url",
    "scopes",
    "connected_at",
    "connected_by",
    "updated_at",
    "last_event_at",
    "revoked_reason",
    "account_type",
    "capabilities",
}


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


@pytest.fixture
def connect(load_function, lambda_context, tiktok, aws):
    """Connect a TikTok account through the real OAuth handlers; returns the integration id."""
    start = load_function("oauth_start")
    callback = load_function("oauth_callback")

    def run(open_id: str, workspace: str, user: str = "user-1") -> str:
        event = http_event(
            "GET", "/integrations/tiktok/oauth/start", jwt_claims=claims(user=user, workspace=workspace)
        )
        url = json_body(start.lambda_handler(event, lambda_context))["authorize_url"]
        query = tiktok.approve(url, open_id)
        response = callback.lambda_handler(
            http_event("GET", "/integrations/tiktok/oauth/callback", query=query), lambda_context
        )
        params = dict(parse_qsl(urlsplit(response["headers"]["Location"]).query))
        assert params["status"] == "connected", params
        return cast(str, params["integration_id"])

    return run


def _stored(workspace: str, open_id: str, status: str, **extra) -> str:
    integration_id = integration_id_for(workspace, open_id)
    integrations()(
        workspace,
        integration_id,
        platform="tiktok",
        status=status,
        open_id=open_id,
        connected_at="2026-11-20T10:00:00Z",
        connected_by="user-9",
        updated_at="2026-11-21T10:00:00Z",
        access_expires_at=1795000000,
        refresh_expires_at=1800000000,
        refresh_bucket="tiktok" if status == "active" else None,
        refresh_due_at=1794990000 if status == "active" else None,
        **extra,
    ).save()
    return integration_id


def test_lists_the_connected_account_with_its_profile_and_no_secret(api, connect, aws):
    integration_id = connect("open-id-alpha", "ws-1", user="u-42")
    response = api.get("/integrations", workspace="ws-1")
    assert response["statusCode"] == 200
    body = json_body(response)
    IntegrationListOut.model_validate(body)
    [item] = body["items"]
    assert set(item) == PUBLIC_FIELDS
    assert item["integration_id"] == integration_id
    assert item["platform"] == "tiktok"
    assert item["status"] == "active"
    assert item["open_id"] == "open-id-alpha"
    assert item["display_name"] == "Alpha Shop"
    assert item["connected_by"] == "u-42"
    assert item["connected_at"].endswith("Z")
    assert item["scopes"] == ["user.info.basic"]
    assert item["last_event_at"] is None
    secrets = aws.token_secrets()
    stored = secrets[integration_id]
    text = response["body"]
    assert stored["access_token"] not in text
    assert stored["refresh_token"] not in text
    assert "tokens/" not in text
    assert "arn:aws" not in text
    assert "refresh" not in json.dumps(sorted(item))


def test_only_the_callers_workspace_and_every_status(api, aws):
    active = _stored("ws-1", "open-a", "active", display_name="A", last_event_at="2026-11-22T09:00:00Z")
    needs = _stored("ws-1", "open-b", "needs_reauth")
    revoked = _stored("ws-1", "open-c", "revoked", revoked_reason="user_disconnected")
    _stored("ws-2", "open-a", "active")
    body = json_body(api.get("/integrations", workspace="ws-1"))
    IntegrationListOut.model_validate(body)
    by_id = {item["integration_id"]: item for item in body["items"]}
    assert set(by_id) == {active, needs, revoked}
    assert {i: by_id[i]["status"] for i in by_id} == {
        active: "active",
        needs: "needs_reauth",
        revoked: "revoked",
    }
    assert by_id[active]["last_event_at"] == "2026-11-22T09:00:00Z"
    assert by_id[revoked]["revoked_reason"] == "user_disconnected"
    assert all(set(item) == PUBLIC_FIELDS for item in body["items"])
    assert json_body(api.get("/integrations", workspace="ws-3")) == {"items": []}


def test_platform_filter(api, aws):
    tiktok_id = _stored("ws-1", "open-a", "active")
    assert [
        i["integration_id"] for i in json_body(api.get("/integrations", {"platform": "tiktok"}))["items"]
    ] == [tiktok_id]
    assert json_body(api.get("/integrations", {"platform": "instagram"})) == {"items": []}
    for bad in ("", "TikTok", "myspace", "tiktok,instagram"):
        response = api.get("/integrations", {"platform": bad})
        assert response["statusCode"] == 400, bad
        assert json_body(response)["error"]["code"] == "invalid_parameter"
