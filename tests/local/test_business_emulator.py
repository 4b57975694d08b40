"""TikTok API for Business in the local emulator, over HTTP: the business consent, the ``tt_user``
OAuth endpoints, the account's lists with cursors and webhook registration — called through the
product's own Business API client, so the shapes are the ones the backend reads — and signed
business deliveries; then the local stack end to end: connect a business account, a DM becomes a
lead, a comment whose webhook TikTok dropped is found by the catch-up once, and
``register-webhooks`` points the emulated Business app at the gateway."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from orcapulse_tiktok.tiktok.business_client import BusinessClient
from orcapulse_tiktok.tiktok.client import TikTokGrantError, TikTokRequestError, TikTokTransientError
from orcapulse_tiktok.tiktok.credentials import AppCredentials

from orcapulse_local.config import LOCAL_BUSINESS_APP_ID, LOCAL_BUSINESS_APP_SECRET
from orcapulse_local.stack import LocalStack
from orcapulse_local.tiktok_emulator import TikTokEmulator
from tests.local.test_stack import auth, connect, send
from tests.local.test_tiktok_emulator import receiver, webhook_server  # noqa: F401 - fixtures

# The fixtures come from the Login Kit emulator tests: pytest injects them by parameter name.
# ruff: noqa: F811

REDIRECT = "http://127.0.0.1:9/integrations/tiktok/oauth/callback"
BUSINESS_ID = "biz-orca-outfitters"  # the emulator's seed business account
APP = AppCredentials(LOCAL_BUSINESS_APP_ID, LOCAL_BUSINESS_APP_SECRET)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def emulator(receiver: ThreadingHTTPServer) -> Iterator[TikTokEmulator]:
    host, port = receiver.server_address[:2]
    emu = TikTokEmulator(webhook_url=f"http://{host!s}:{port}/webhooks/tiktok", redirect_uris=(REDIRECT,))
    emu.start()
    yield emu
    emu.stop()


def business_code(emulator: TikTokEmulator, open_id: str = BUSINESS_ID) -> str:
    """Approve the Business app at the consent page as ``open_id``: the callback's code."""
    query = {
        "client_key": LOCAL_BUSINESS_APP_ID,
        "scope": "user.info.basic,comment.list,message.list.read",
        "redirect_uri": REDIRECT,
        "state": "st-1",
        "response_type": "code",
    }
    page = requests.get(emulator.url + "/v2/auth/authorize/", params=query, timeout=10)
    assert page.status_code == 200
    assert "Orca Outfitters" in page.text  # business accounts are offered, not Login Kit ones
    assert "Orca Fan Shop" not in page.text
    form = {**query, "decision": "approve", "open_id": open_id}
    approved = requests.post(
        emulator.url + "/v2/auth/authorize/", data=form, allow_redirects=False, timeout=10
    )
    assert approved.status_code == 302
    landing = dict(parse_qsl(urlsplit(approved.headers["Location"]).query))
    assert landing["scopes"] == query["scope"]
    assert landing["state"] == "st-1"
    return landing["code"]


def test_business_oauth_profile_refresh_rotation_and_revoke(emulator):
    client = BusinessClient(emulator.url, sleep=lambda _s: None)
    grant = client.exchange_code(APP, code=business_code(emulator), redirect_uri=REDIRECT)
    assert grant.open_id == BUSINESS_ID
    assert set(grant.scopes) == {"user.info.basic", "comment.list", "message.list.read"}
    assert client.profile(grant.access_token, BUSINESS_ID).display_name == "Orca Outfitters"
    with pytest.raises(TikTokRequestError) as other:
        client.profile(grant.access_token, "biz-someone-else")
    assert other.value.code == "40001"
    rotated = client.refresh(APP, grant.refresh_token)
    assert rotated.refresh_token != grant.refresh_token
    with pytest.raises(TikTokGrantError):  # rotation: the used refresh token is dead
        client.refresh(APP, grant.refresh_token)
    client.revoke(APP, rotated.access_token)
    with pytest.raises(TikTokGrantError):
        client.profile(rotated.access_token, BUSINESS_ID)
    # Errors come as HTTP 200 with a non-zero code, as the Business API docs show.
    raw = requests.get(
        emulator.url + "/open_api/v1.3/business/get/", params={"business_id": BUSINESS_ID}, timeout=10
    )
    assert raw.status_code == 200
    assert raw.json()["code"] == 40105
    snapshot = json.dumps(emulator.snapshot())
    assert grant.access_token not in snapshot
    assert '"revocations": 1' in snapshot


def test_a_code_is_single_use_and_bound_to_its_redirect_uri(emulator):
    client = BusinessClient(emulator.url)
    code = business_code(emulator)
    with pytest.raises(TikTokRequestError):
        client.exchange_code(APP, code=code, redirect_uri="http://127.0.0.1:9/elsewhere")
    with pytest.raises(TikTokRequestError):
        client.exchange_code(APP, code=code, redirect_uri=REDIRECT)


def test_webhook_registration_is_per_app(emulator):
    client = BusinessClient(emulator.url)
    url = "https://api.orcapulse.test/webhooks/tiktok"
    assert "callback_url" not in client.webhook_list(APP, event_type="COMMENT")
    client.webhook_update(APP, event_type="COMMENT", callback_url=url)
    assert client.webhook_list(APP, event_type="COMMENT")["callback_url"] == url
    with pytest.raises(TikTokRequestError):
        client.webhook_list(AppCredentials(LOCAL_BUSINESS_APP_ID, "wrong"), event_type="COMMENT")


def test_lists_page_with_cursors_and_deliveries_are_signed_by_the_business_app(emulator, receiver):
    client = BusinessClient(emulator.url)
    token = client.exchange_code(APP, code=business_code(emulator), redirect_uri=REDIRECT).access_token
    for n in range(31):  # one more than a page of business/comment/list/
        emulator.send_event("comment", BUSINESS_ID, f"comment {n}", author="reef.fan", hold=True)
    delivered = emulator.send_event("comment", BUSINESS_ID, "the delivered one", author="reef.fan")
    dm = emulator.send_event("dm", BUSINESS_ID, "Group booking?", author="reef.fan")
    assert (delivered.status, dm.status) == (200, 200)
    assert len(receiver.received) == 2  # the held comments were never delivered
    headers, body = receiver.received[0]
    envelope = json.loads(body)
    assert (envelope["client_key"], envelope["user_openid"]) == (LOCAL_BUSINESS_APP_ID, BUSINESS_ID)
    stamp, mac = (part.split("=", 1)[1] for part in headers["TikTok-Signature"].split(","))
    expected = hmac.new(LOCAL_BUSINESS_APP_SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    assert mac == expected.hexdigest()

    [video] = client.videos(token, BUSINESS_ID, max_count=10).items
    first = client.comments(token, BUSINESS_ID, str(video["item_id"]), cursor=None)
    assert (len(first.items), first.has_more) == (30, True)
    assert first.items[0]["text"] == "the delivered one"  # newest first
    assert str(json.loads(envelope["content"])["comment_id"]) == first.items[0]["comment_id"]
    rest = client.comments(token, BUSINESS_ID, str(video["item_id"]), cursor=first.cursor)
    assert (len(rest.items), rest.has_more) == (2, False)

    [conversation] = client.conversations(token, BUSINESS_ID, "STRANGER", limit=10).items
    [message] = client.messages(token, BUSINESS_ID, conversation["conversation_id"]).items
    content = json.loads(json.loads(receiver.received[1][1])["content"])
    assert (message["message_id"], message["sender"]) == (content["message_id"], "reef.fan")
    assert message["text"] == {"body": "Group booking?"}
    assert message["from_user"]["role"] == "PERSONAL_ACCOUNT"


def test_business_faults_answer_tiktok_error_codes(emulator):
    control = emulator.url + "/local/faults"
    done = requests.post(
        control, json={"endpoint": "business.profile", "code": 40100, "times": 3}, timeout=10
    )
    assert done.json() == {"endpoint": "business.profile", "pending": 3}
    client = BusinessClient(emulator.url, sleep=lambda _s: None)
    token = client.exchange_code(APP, code=business_code(emulator), redirect_uri=REDIRECT).access_token
    with pytest.raises(TikTokTransientError) as limited:  # retried with backoff, then given up
        client.profile(token, BUSINESS_ID)
    assert limited.value.code == "40100"
    assert emulator.business.state.calls["profile"] == 3
    assert client.profile(token, BUSINESS_ID).display_name == "Orca Outfitters"
    wrong = requests.post(control, json={"endpoint": "business.nope"}, timeout=10)
    assert wrong.status_code == 400


def test_only_a_business_comment_can_be_held(emulator):
    with pytest.raises(ValueError, match="business"):
        emulator.send_event("comment", "open-id-orca-fan", "hi", hold=True)
    with pytest.raises(ValueError, match="business"):
        emulator.send_event("dm", BUSINESS_ID, "hi", hold=True)


# -- the local stack -------------------------------------------------------------------------------
slow = pytest.mark.slow


def catch_up(live: LocalStack) -> dict[str, int]:
    resp = requests.post(live.api_url + "/local/schedules/BusinessCatchupFunction/run", json={}, timeout=60)
    assert resp.status_code == 200
    outcome = resp.json()
    assert outcome["ok"] is True, outcome
    report: dict[str, int] = outcome["result"]
    return report


@slow
def test_a_business_account_end_to_end(live):
    token = live.dev_token(workspace="ws-business-e2e")
    integration_id = connect(live, token, BUSINESS_ID, account_type="business")
    [item] = [
        i
        for i in requests.get(live.api_url + "/integrations", headers=auth(token), timeout=30).json()["items"]
        if i["integration_id"] == integration_id
    ]
    assert item["account_type"] == "business"
    assert "direct_messages" in item["capabilities"]

    assert send(live, "dm", BUSINESS_ID, "Wetsuits for 12?", "reef.e2e")["response"] == {"status": "accepted"}
    held = requests.post(
        live.api_url + "/local/tiktok/webhooks",
        json={
            "event": "comment",
            "open_id": BUSINESS_ID,
            "text": "Tour price?",
            "author": "quiet.e2e",
            "hold": True,
        },
        timeout=30,
    ).json()
    assert held["status"] is None

    def leads() -> dict[str, dict[str, Any]]:
        found = requests.get(live.api_url + "/social-leads", headers=auth(token), timeout=30).json()["items"]
        return {lead["author"]["username"]: lead for lead in found}

    assert set(leads()) == {"reef.e2e"}
    first = catch_up(live)
    assert first["leads_created"] >= 1
    assert leads()["quiet.e2e"]["capture_sources"] == ["tiktok_comment"]
    before = leads()
    second = catch_up(live)
    assert second["leads_created"] == 0
    assert leads() == before
    # TikTok delivers the dropped comment late after all: the same lead, nothing new.
    late = requests.post(
        live.api_url + f"/local/tiktok/webhooks/{held['delivery_id']}/redeliver", json={}, timeout=30
    )
    assert late.json()["response"] == {"status": "duplicate"}
    assert leads() == before

    gone = requests.delete(
        live.api_url + f"/integrations/tiktok/{integration_id}", headers=auth(token), timeout=30
    )
    assert gone.json()["revoked"] is True


@slow
def test_register_webhooks_points_the_emulated_business_app_at_the_gateway(live):
    ports = {
        "LOCAL_API_PORT": live.api_url,
        "LOCAL_TIKTOK_PORT": live.tiktok_url,
        "LOCAL_AWS_PORT": live.aws_url,
    }
    env = {**os.environ, **{k: str(urlsplit(v).port) for k, v in ports.items()}}
    command = [sys.executable, "-m", "orcapulse_local", "register-webhooks"]
    runs = [
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        for _ in range(2)
    ]
    for done in runs:
        assert done.returncode == 0, done.stdout + done.stderr
    url = live.api_url + "/webhooks/tiktok"
    assert f"COMMENT: registered -> {url}" in runs[0].stdout
    assert f"COMMENT: already registered -> {url}" in runs[1].stdout
    assert live.emulator is not None
    assert live.emulator.business.state.webhooks == {"DIRECT_MESSAGE": url, "COMMENT": url}
