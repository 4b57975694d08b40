"""The TikTok emulator over HTTP: the consent page, the documented token/user-info/revoke
endpoints with PKCE and rotation, and the signed-webhook sender."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from orcapulse_local.config import LOCAL_CLIENT_KEY, LOCAL_CLIENT_SECRET
from orcapulse_local.tiktok_emulator import TikTokEmulator

REDIRECT = "http://127.0.0.1:9/integrations/tiktok/oauth/callback"
VERIFIER = "v" * 43 + "-._~0123456789"


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.server.received.append((dict(self.headers), body))  # type: ignore[attr-defined]
        payload = b'{"status": "accepted"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        """Keep the receiver's access log out of the test output."""


@pytest.fixture(scope="module")
def webhook_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver(webhook_server: ThreadingHTTPServer) -> ThreadingHTTPServer:
    """The webhook receiver, with what earlier tests delivered forgotten."""
    webhook_server.received.clear()  # type: ignore[attr-defined]
    return webhook_server


@pytest.fixture(scope="module")
def emulator(webhook_server) -> Iterator[TikTokEmulator]:
    host, port = webhook_server.server_address[:2]
    emu = TikTokEmulator(webhook_url=f"http://{host}:{port}/webhooks/tiktok", redirect_uris=(REDIRECT,))
    emu.start()
    yield emu
    emu.stop()


def authorize_query(**overrides: str) -> dict[str, str]:
    query = {
        "client_key": LOCAL_CLIENT_KEY,
        "scope": "user.info.basic,user.info.profile",
        "redirect_uri": REDIRECT,
        "state": "state-123",
        "response_type": "code",
        "code_challenge": hashlib.sha256(VERIFIER.encode()).hexdigest(),
        "code_challenge_method": "S256",
    }
    query.update(overrides)
    return query


def approve(emulator: TikTokEmulator, **form: str) -> dict[str, str]:
    url = f"{emulator.url}/v2/auth/authorize/?{urlencode(authorize_query())}"
    resp = requests.post(url, data={"decision": "approve", **form}, allow_redirects=False, timeout=10)
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(location).query))


def token(emulator: TikTokEmulator, **form: str) -> requests.Response:
    data = {"client_key": LOCAL_CLIENT_KEY, "client_secret": LOCAL_CLIENT_SECRET, **form}
    return requests.post(emulator.url + "/v2/oauth/token/", data=data, timeout=10)


def test_consent_page_is_html_with_approve_and_deny(emulator):
    resp = requests.get(f"{emulator.url}/v2/auth/authorize/", params=authorize_query(), timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    page = resp.text
    assert re.search(r'<button[^>]*name="decision" value="approve"[^>]*>Approve</button>', page)
    assert re.search(r'<button[^>]*name="decision" value="deny"[^>]*>Deny</button>', page)
    assert '<form method="post" action="/v2/auth/authorize/">' in page
    assert 'name="state" value="state-123"' in page
    assert "Orca Fan Shop" in page  # a seed account to continue as


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"client_key": "someone-else"}, "not known"),
        ({"redirect_uri": "https://evil.test/cb"}, "not registered"),
        ({"response_type": "token"}, "response_type"),
        ({"code_challenge_method": "plain"}, "S256"),
    ],
)
def test_a_bad_authorize_request_gets_an_error_page(emulator, override, problem):
    resp = requests.get(f"{emulator.url}/v2/auth/authorize/", params=authorize_query(**override), timeout=10)
    assert resp.status_code == 400
    assert problem in resp.text


def test_approve_redirects_with_code_scopes_and_state(emulator):
    query = approve(emulator, open_id="open-id-tide-pool")
    assert set(query) == {"code", "scopes", "state"}
    assert query["state"] == "state-123"
    assert query["scopes"] == "user.info.basic,user.info.profile"
    assert emulator.last_authorized == "open-id-tide-pool"


def test_deny_redirects_with_access_denied(emulator):
    url = f"{emulator.url}/v2/auth/authorize/?{urlencode(authorize_query())}"
    resp = requests.post(url, data={"decision": "deny"}, allow_redirects=False, timeout=10)
    query = dict(parse_qsl(urlsplit(resp.headers["Location"]).query))
    assert query["error"] == "access_denied"
    assert query["state"] == "state-123"
    assert "code" not in query


def test_the_user_can_untick_a_scope_and_add_an_account(emulator):
    query = approve(
        emulator, scopes_submitted="1", granted_scope="user.info.basic", open_id="new", display_name="Kelp Co"
    )
    assert query["scopes"] == "user.info.basic"
    assert any(a.display_name == "Kelp Co" for a in emulator.state.accounts.values())


def test_code_exchange_checks_pkce_and_the_redirect_uri(emulator):
    code = approve(emulator)["code"]
    wrong = token(
        emulator, code=code, grant_type="authorization_code", redirect_uri=REDIRECT, code_verifier="x" * 43
    )
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")

    code = approve(emulator)["code"]
    good = token(
        emulator, code=code, grant_type="authorization_code", redirect_uri=REDIRECT, code_verifier=VERIFIER
    )
    assert good.status_code == 200
    body = good.json()
    assert set(body) == {
        "access_token",
        "expires_in",
        "open_id",
        "refresh_token",
        "refresh_expires_in",
        "scope",
        "token_type",
    }
    again = token(
        emulator, code=code, grant_type="authorization_code", redirect_uri=REDIRECT, code_verifier=VERIFIER
    )
    assert again.json()["error"] == "invalid_grant"  # single use


def test_refresh_rotates_user_info_answers_and_revoke_kills_the_token(emulator):
    code = approve(emulator, open_id="open-id-orca-fan")["code"]
    grant = token(
        emulator, code=code, grant_type="authorization_code", redirect_uri=REDIRECT, code_verifier=VERIFIER
    ).json()
    fresh = token(emulator, grant_type="refresh_token", refresh_token=grant["refresh_token"]).json()
    assert fresh["refresh_token"] != grant["refresh_token"]
    reused = token(emulator, grant_type="refresh_token", refresh_token=grant["refresh_token"])
    assert reused.json()["error"] == "invalid_grant"

    info = requests.get(
        emulator.url + "/v2/user/info/",
        params={"fields": "open_id,union_id,avatar_url,display_name"},
        headers={"Authorization": f"Bearer {fresh['access_token']}"},
        timeout=10,
    ).json()
    assert info["error"]["code"] == "ok"
    assert info["data"]["user"]["open_id"] == "open-id-orca-fan"
    assert info["data"]["user"]["display_name"] == "Orca Fan Shop"

    revoked = requests.post(
        emulator.url + "/v2/oauth/revoke/",
        data={
            "client_key": LOCAL_CLIENT_KEY,
            "client_secret": LOCAL_CLIENT_SECRET,
            "token": fresh["access_token"],
        },
        timeout=10,
    )
    assert revoked.status_code == 200
    after = requests.get(
        emulator.url + "/v2/user/info/",
        params={"fields": "open_id"},
        headers={"Authorization": f"Bearer {fresh['access_token']}"},
        timeout=10,
    )
    assert (after.status_code, after.json()["error"]["code"]) == (401, "access_token_invalid")
    state = requests.get(emulator.url + "/local/state", timeout=10).json()
    assert "open-id-orca-fan" in state["revoked"]
    assert fresh["access_token"] not in json.dumps(state)


def test_a_wrong_client_secret_is_refused(emulator):
    resp = requests.post(
        emulator.url + "/v2/oauth/token/",
        data={"client_key": LOCAL_CLIENT_KEY, "client_secret": "nope", "grant_type": "refresh_token"},
        timeout=10,
    )
    assert (resp.status_code, resp.json()["error"]) == (401, "invalid_client")


def test_faults_can_be_injected_over_http(emulator):
    requests.post(emulator.url + "/local/faults", json={"endpoint": "token", "status": 503}, timeout=10)
    assert token(emulator, grant_type="refresh_token", refresh_token="x").status_code == 503
    assert token(emulator, grant_type="refresh_token", refresh_token="x").status_code == 400
    bad = requests.post(emulator.url + "/local/faults", json={"endpoint": "nope"}, timeout=10)
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("kind", "event"),
    [
        ("comment", "comment.update"),
        ("dm", "im_receive_msg"),
        ("high_intent", "im_receive_high_intent_comment"),
        ("removed", "authorization.removed"),
    ],
)
def test_webhooks_are_sent_signed_as_tiktok_signs_them(emulator, receiver, kind, event):
    resp = requests.post(
        emulator.url + "/local/webhooks",
        json={"event": kind, "open_id": "open-id-orca-fan", "text": "how much?"},
        timeout=10,
    )
    assert resp.status_code == 200
    summary = resp.json()
    assert summary["status"] == 200
    assert summary["response"] == {"status": "accepted"}
    [(headers, body)] = receiver.received
    t, s = (part.split("=", 1)[1] for part in headers["TikTok-Signature"].split(","))
    expected = hmac.new(LOCAL_CLIENT_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(s, expected)
    envelope = json.loads(body)
    assert set(envelope) == {"client_key", "event", "create_time", "user_openid", "content"}
    assert (envelope["client_key"], envelope["event"], envelope["user_openid"]) == (
        LOCAL_CLIENT_KEY,
        event,
        "open-id-orca-fan",
    )
    content = json.loads(envelope["content"])  # a JSON string, as TikTok sends it
    if kind == "comment":
        assert content["text"] == "how much?"
        assert content["comment_action"] == "insert"
        assert isinstance(content["comment_id"], int)
    elif kind == "dm":
        assert content["text"] == {"body": "how much?"}
        assert content["to_user"] == {"id": "open-id-orca-fan"}
    elif kind == "high_intent":
        assert content["comment_text"] == "how much?"
        assert isinstance(content["comment_id"], int)
    else:
        assert content == {"reason": 1}


def test_a_redelivery_sends_the_same_body_again(emulator, receiver):
    first = requests.post(emulator.url + "/local/webhooks", json={"event": "comment"}, timeout=10).json()
    again = requests.post(
        emulator.url + f"/local/webhooks/{first['delivery_id']}/redeliver", json={}, timeout=10
    ).json()
    assert again["delivery_id"] != first["delivery_id"]
    assert receiver.received[0][1] == receiver.received[1][1]
    unknown = requests.post(emulator.url + "/local/webhooks/nope/redeliver", json={}, timeout=10)
    assert unknown.status_code == 404
    form = requests.post(emulator.url + "/local/webhooks", data={"event": "comment"}, timeout=10)
    assert form.status_code == 415


def test_the_consent_page_names_the_app_not_its_client_key(emulator):
    page = requests.get(f"{emulator.url}/v2/auth/authorize/", params=authorize_query(), timeout=10).text
    assert "Log in to <strong>OrcaPulse (local)</strong>" in page
    assert f"<strong>{LOCAL_CLIENT_KEY}</strong>" not in page


def test_an_author_writes_as_one_person_in_one_conversation(emulator, receiver):
    for kind in ("dm", "dm", "comment"):
        resp = requests.post(
            emulator.url + "/local/webhooks",
            json={"event": kind, "open_id": "open-id-orca-fan", "text": "hi", "author": "kelp.fan"},
            timeout=10,
        )
        assert resp.status_code == 200
    first, second, comment = (json.loads(json.loads(body)["content"]) for _, body in receiver.received)
    assert first["from"] == second["from"] == "kelp.fan"
    assert first["from_user"] == second["from_user"]
    assert first["conversation_id"] == second["conversation_id"]
    assert first["message_id"] != second["message_id"]
    assert comment["unique_identifier"] == "kelp.fan"
    other = requests.post(
        emulator.url + "/local/webhooks",
        json={"event": "dm", "open_id": "open-id-orca-fan", "text": "hi", "author": "reef.fan"},
        timeout=10,
    )
    assert other.status_code == 200
    assert (
        json.loads(json.loads(receiver.received[-1][1])["content"])["conversation_id"]
        != first["conversation_id"]
    )


def test_without_an_author_each_event_comes_from_a_new_stranger(emulator, receiver):
    for kind in ("dm", "dm", "comment", "high_intent"):
        resp = requests.post(
            emulator.url + "/local/webhooks",
            json={"event": kind, "open_id": "open-id-orca-fan", "text": "hi"},
            timeout=10,
        )
        assert resp.status_code == 200
    contents = [json.loads(json.loads(body)["content"]) for _, body in receiver.received[-4:]]
    handles = [c.get("from") or c.get("unique_identifier") for c in contents]
    assert len(set(handles)) == 4, handles
    assert all(handle.startswith("stranger.") for handle in handles)
    assert contents[0]["conversation_id"] != contents[1]["conversation_id"]
