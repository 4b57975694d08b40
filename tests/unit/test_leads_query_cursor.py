"""Paging cursors are opaque and tamper-evident: altered, foreign, re-scoped or re-keyed cursors
are 400 invalid_cursor and never reach another workspace's data."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from orcapulse_tiktok import cursor
from orcapulse_tiktok.errors import ConfigError

from tests.support.deployment import CONTEXT
from tests.support.leads import (
    BASE_MS,
    ReadApi,
    capture,
    ids,
    person_items,
    put_items,
    record_dynamodb_calls,
    stored_leads,
)

WS, OTHER_WS = "ws-1", "ws-2"


@pytest.fixture
def api(load_function, lambda_context, aws) -> ReadApi:
    return ReadApi(load_function("leads_query"), lambda_context)


@pytest.fixture
def two_workspaces(aws) -> tuple[list[Any], list[Any]]:
    put_items(
        raw for n in range(12) for raw in person_items(capture(workspace_id=WS, at_ms=BASE_MS + n * 1000))
    )
    put_items(
        raw
        for n in range(12)
        for raw in person_items(capture(workspace_id=OTHER_WS, at_ms=BASE_MS + n * 1000 + 500))
    )
    return ids(stored_leads(WS)), ids(stored_leads(OTHER_WS))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(body: dict[str, Any], key: bytes) -> str:
    """A cursor built outside the product, signed with ``key`` the way the product signs."""
    payload = _b64(json.dumps(body, separators=(",", ":")).encode())
    derived = hmac.new(key, b"orcapulse social-leads cursor v1", hashlib.sha256).digest()
    return f"{payload}.{_b64(hmac.new(derived, payload.encode(), hashlib.sha256).digest())}"


def _payload(token: str) -> dict[str, Any]:
    payload = token.split(".")[0]
    return cast(dict[str, Any], json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _invalid(status_body: tuple[int, dict[str, Any]]) -> bool:
    status, body = status_body
    return status == 400 and body["error"]["code"] == "invalid_cursor" and set(body) == {"error"}


def test_a_cursor_is_opaque_and_resumes_exactly_after_the_last_lead(api, two_workspaces):
    mine, _ = two_workspaces
    status, first = api.leads(limit=5)
    assert status == 200
    token = first["next_cursor"]
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    _, second = api.leads(limit=5, cursor=token)
    assert [i["lead_id"] for i in first["items"] + second["items"]] == mine[:10]
    # The page size may change between pages; the filters may not.
    _, rest = api.leads(limit=100, cursor=second["next_cursor"])
    assert [i["lead_id"] for i in rest["items"]] == mine[10:]
    assert rest["next_cursor"] is None


def test_altered_cursors_are_rejected(api, two_workspaces):
    token = api.leads(limit=3)[1]["next_cursor"]
    payload, mac = token.split(".")
    flipped = {"A": "B", "B": "A"}
    altered = [
        "",
        "x",
        ".",
        token + "A",
        token[:-1],
        "A" + token,
        payload,
        f"{payload}.",
        f".{mac}",
        f"{payload}.{mac}.{mac}",
        f"{payload[:-1]}{flipped.get(payload[-1], 'A')}.{mac}",
        f"{payload}.{mac[:-1]}{flipped.get(mac[-1], 'A')}",
        f"{payload}={'.'}{mac}",
        token.replace(".", "%2E"),
        token + "é",
        "A" * 2000,
        f"{_b64(b'not json')}.{mac}",
    ]
    with record_dynamodb_calls() as calls:
        for bad in altered:
            assert _invalid(api.leads(limit=3, cursor=bad)), bad
    assert calls == []  # rejected before any read


def test_a_cursor_of_another_workspace_is_rejected(api, two_workspaces):
    theirs_token = api.leads(OTHER_WS, limit=3)[1]["next_cursor"]
    assert _invalid(api.leads(WS, limit=3, cursor=theirs_token))
    # Changing the workspace inside the payload breaks the MAC.
    body = {**_payload(theirs_token), "w": WS}
    swapped = _b64(json.dumps(body, separators=(",", ":")).encode()) + "." + theirs_token.split(".")[1]
    assert _invalid(api.leads(WS, limit=3, cursor=swapped))


def test_a_cursor_is_bound_to_its_filters(api, two_workspaces):
    token = api.leads(limit=3, status="new")[1]["next_cursor"]
    assert api.leads(limit=3, status="new", cursor=token)[0] == 200
    for other in (
        {},
        {"status": "qualified"},
        {"platform": "tiktok"},
        {"status": "new", "platform": "tiktok"},
        {"status": "new", "assignee": "user-1"},
        {"status": "new", "high_intent": "false"},
        {"status": "new", "label": "vip"},
    ):
        assert _invalid(api.leads(limit=3, cursor=token, **other)), other
    assert _invalid(api.leads(limit=3, status="new", since="2026-01-01T00:00:00Z", cursor=token))


def test_a_cursor_signed_with_another_key_is_rejected(api, two_workspaces):
    mine, _ = two_workspaces
    genuine = api.leads(limit=3)[1]
    assert _invalid(api.leads(limit=3, cursor=_forge(_payload(genuine["next_cursor"]), b"k" * 63 + b"j")))
    assert api.leads(limit=3, cursor=_forge(_payload(genuine["next_cursor"]), b"k" * 64))[0] == 200
    # Rotating the key invalidates outstanding cursors; new ones work under the new key.
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=CONTEXT.resources["CursorKeySecret"]["Ref"], SecretString="r" * 64
    )
    parameters.clear_caches()
    assert _invalid(api.leads(limit=3, cursor=genuine["next_cursor"]))
    fresh = api.leads(limit=3)[1]["next_cursor"]
    assert [i["lead_id"] for i in api.leads(limit=3, cursor=fresh)[1]["items"]] == mine[3:6]


def test_even_a_validly_signed_position_never_reaches_another_workspace(api, two_workspaces):
    # Were the key ever to leak, a cursor pointing into another workspace's leads still only
    # resumes inside the caller's own partition: the workspace comes from the JWT, not the cursor.
    _, theirs = two_workspaces
    genuine = _payload(api.leads(WS, limit=2)[1]["next_cursor"])
    position = next(lead.activity_key for lead in stored_leads(OTHER_WS) if lead.lead_id == theirs[6])
    forged = _forge({**genuine, "p": position}, b"k" * 64)
    status, body = api.leads(WS, limit=50, cursor=forged)
    assert status == 200
    assert {i["workspace_id"] for i in body["items"]} == {WS}
    assert [i["lead_id"] for i in body["items"]] == ids(
        lead for lead in stored_leads(WS) if (lead.activity_key or "") < position
    )


def test_the_cursor_key_must_be_long_enough(api, two_workspaces):
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=CONTEXT.resources["CursorKeySecret"]["Ref"], SecretString="short"
    )
    parameters.clear_caches()
    with pytest.raises(ConfigError, match="CURSOR_KEY_SECRET_ID"):
        cursor.issue(workspace_id=WS, query="q", position="p")


def test_without_a_configured_key_cursors_still_page_and_refuse_tampering(api, two_workspaces, monkeypatch):
    from orcapulse_tiktok.config import get_settings

    mine, _ = two_workspaces
    monkeypatch.delenv("CURSOR_KEY_SECRET_ID")
    get_settings.cache_clear()
    try:
        seen, sizes = api.page_through(limit=5)
        assert sizes == [5, 5, 2]
        assert seen == mine
        _, first = api.leads(limit=5)
        token = first["next_cursor"]
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert _invalid(api.leads(limit=5, cursor=tampered))
        assert _invalid(api.leads(OTHER_WS, limit=5, cursor=token))
    finally:
        get_settings.cache_clear()
