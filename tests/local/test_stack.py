"""The local stack over real HTTP: the route table against the template, the emulated authorizer's
401s, the whole story (connect → leads → duplicate → list → disconnect), the console, and the
``python -m orcapulse_local`` commands (serve stops cleanly on Ctrl-C, token, demo)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import pytest
import requests

from orcapulse_local import config
from orcapulse_local.aws_server import client
from orcapulse_local.cli import pretty_sink
from orcapulse_local.dev_tokens import mint
from orcapulse_local.stack import CONSOLE_DIR, LocalStack
from orcapulse_local.template import load_template

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def template_routes() -> set[tuple[str, str, str, bool]]:
    """Every HttpApi event of the template, read straight from the YAML."""
    template = load_template()
    api_default = {
        name: bool(spec["Properties"].get("Auth", {}).get("DefaultAuthorizer"))
        for name, spec in template["Resources"].items()
        if spec["Type"] == "AWS::Serverless::HttpApi"
    }
    out = set()
    for name, spec in template["Resources"].items():
        if spec["Type"] != "AWS::Serverless::Function":
            continue
        for event in spec["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                auth = props.get("Auth", {}).get("Authorizer")
                authorized = api_default[props["ApiId"]["Ref"]] if auth is None else auth != "NONE"
                out.add((props["Method"], props["Path"], name, authorized))
    return out


def concrete(path: str) -> str:
    return path.replace("{integration_id}", "tt_0000").replace("{lead_id}", "ld_0000")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- routes and the authorizer ------------------------------------------------------------------------------
def test_the_route_table_matches_the_template(live):
    served = {(r.method, r.path, r.function, r.authorized) for r in live.gateway.routes.routes}
    assert served == template_routes()
    assert not any(path.startswith("/local/") for _, path, _, _ in served)


def test_every_template_route_is_served_and_unknown_routes_are_404(live):
    token = live.dev_token()
    for method, path, _function, _authorized in template_routes():
        resp = requests.request(
            method, live.api_url + concrete(path), headers=auth(token), allow_redirects=False, timeout=30
        )
        # The function answered: anything but the gateway's own 404 or a function failure.
        assert resp.status_code != 500, (method, path, resp.text)
        assert resp.text != json.dumps({"message": "Not Found"}), (method, path)
        assert resp.headers.get("apigw-requestid"), (method, path)
    for method, path in (("GET", "/nope"), ("POST", "/social-leads"), ("PUT", "/integrations")):
        resp = requests.request(method, live.api_url + path, timeout=10)
        assert (resp.status_code, resp.json()) == (404, {"message": "Not Found"})


def forged(**claims: Any) -> str:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "u",
        "iss": config.DEV_JWT_ISSUER,
        "aud": config.DEV_JWT_AUDIENCE,
        "iat": now,
        "exp": now + 60,
        "custom:workspace_id": "ws",
    }
    base.update(claims)
    key = base.pop("key", config.DEV_JWT_SECRET)
    return jwt.encode({k: v for k, v in base.items() if v is not None}, key, algorithm="HS256")


BAD_TOKENS = {
    "none": None,
    "garbage": "definitely-not-a-jwt",
    "bad-signature": forged(key="a-different-key-that-is-long-enough-1234"),
    "wrong-issuer": forged(iss="https://issuer.example.com"),
    "wrong-audience": forged(aud="another-app"),
    "expired": forged(exp=int(time.time()) - 1),
    "no-expiry": forged(exp=None),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_the_emulated_authorizer_answers_401_on_every_protected_route(live, case):
    token = BAD_TOKENS[case]
    headers = auth(token) if token else {}
    for method, path, _function, authorized in template_routes():
        if not authorized:
            continue
        resp = requests.request(method, live.api_url + concrete(path), headers=headers, timeout=10)
        assert resp.status_code == 401, (case, method, path)
        assert resp.json() == {"message": "Unauthorized"}


def test_public_routes_skip_the_authorizer_and_a_token_without_workspace_is_403(live):
    callback = requests.get(
        live.api_url + "/integrations/tiktok/oauth/callback", allow_redirects=False, timeout=30
    )
    assert callback.status_code == 302
    webhook = requests.post(live.api_url + "/webhooks/tiktok", data=b"{}", timeout=30)
    assert webhook.status_code == 401  # the function's signature check, not the authorizer
    assert "message" not in webhook.json()
    no_workspace = requests.get(
        live.api_url + "/integrations", headers=auth(live.dev_token(workspace=None)), timeout=30
    )
    assert no_workspace.status_code == 403
    assert no_workspace.json()["error"]["code"] == "workspace_required"


# -- the story ---------------------------------------------------------------------------------------------
def connect(live: LocalStack, token: str, open_id: str, account_type: str = "personal") -> str:
    start = requests.get(
        live.api_url + "/integrations/tiktok/oauth/start",
        params={"account_type": account_type},
        headers=auth(token),
        timeout=30,
    )
    assert start.status_code == 200
    authorize = start.json()["authorize_url"]
    assert authorize.startswith(live.tiktok_url + "/v2/auth/authorize/?")
    consent = requests.get(authorize, timeout=10)
    assert consent.status_code == 200
    assert "Approve" in consent.text
    assert "Deny" in consent.text
    query = dict(parse_qsl(urlsplit(authorize).query))
    approved = requests.post(
        authorize.split("?")[0],
        data={**query, "decision": "approve", "open_id": open_id},
        allow_redirects=False,
        timeout=10,
    )
    assert approved.status_code == 302
    landing = requests.get(approved.headers["Location"], allow_redirects=False, timeout=30)
    assert landing.status_code == 302
    location = landing.headers["Location"]
    assert location.startswith(live.api_url + "/integrations/tiktok?")
    result = dict(parse_qsl(urlsplit(location).query))
    assert result["status"] == "connected", result
    return result["integration_id"]


def send(live: LocalStack, kind: str, open_id: str, text: str = "", author: str = "") -> dict[str, Any]:
    resp = requests.post(
        live.api_url + "/local/tiktok/webhooks",
        json={"event": kind, "open_id": open_id, "text": text, "author": author},
        timeout=30,
    )
    assert resp.status_code == 200
    summary: dict[str, Any] = resp.json()
    return summary


def get(live: LocalStack, token: str, path: str, **params: Any) -> Any:
    resp = requests.get(live.api_url + path, params=params, headers=auth(token), timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_the_full_story(live):
    workspace, token = "ws-story", live.dev_token("ws-story", "u-story")
    open_id = live.emulator.state.add_account(display_name="Story Shop").open_id

    integration_id = connect(live, token, open_id)
    [integration] = get(live, token, "/integrations")["items"]
    assert (integration["integration_id"], integration["status"]) == (integration_id, "active")
    assert integration["display_name"] == "Story Shop"

    # One person comments and then writes a DM; another person writes a DM.
    comment = send(live, "comment", open_id, "How much for 3 orca plushies?", author="reef.buyer")
    assert (comment["status"], comment["response"]) == (200, {"status": "accepted"})
    dm = send(live, "dm", open_id, "Do you do wholesale?", author="reef.buyer")
    assert (dm["status"], dm["response"]) == (200, {"status": "accepted"})
    other = send(live, "dm", open_id, "Is the big one in stock?", author="kelp.fan")
    assert other["response"] == {"status": "accepted"}

    redelivered = requests.post(
        live.api_url + f"/local/tiktok/webhooks/{comment['delivery_id']}/redeliver", json={}, timeout=30
    ).json()
    assert redelivered["response"] == {"status": "duplicate"}

    # Two people, the latest activity first; the one who wrote twice has both interactions.
    leads = get(live, token, "/social-leads")["items"]
    assert [lead["author"]["username"] for lead in leads] == ["kelp.fan", "reef.buyer"]
    kelp, reef = leads
    assert [kelp["interaction_count"], reef["interaction_count"]] == [1, 2]
    assert reef["capture_sources"] == ["tiktok_comment", "tiktok_dm"]
    assert reef["capture_source"] == "tiktok_comment"  # the first interaction's
    assert reef["message"] == "Do you do wholesale?"  # the latest interaction's
    assert all(
        lead["workspace_id"] == workspace and lead["integration_id"] == integration_id for lead in leads
    )
    timeline = get(live, token, f"/social-leads/{reef['lead_id']}/interactions", limit=1)
    assert [(i["kind"], i["message"]) for i in timeline["items"]] == [("dm", "Do you do wholesale?")]
    older = get(
        live, token, f"/social-leads/{reef['lead_id']}/interactions", limit=1, cursor=timeline["next_cursor"]
    )
    assert [(i["kind"], i["message"]) for i in older["items"]] == [
        ("comment", "How much for 3 orca plushies?")
    ]
    assert older["next_cursor"] is None

    comments = get(live, token, "/social-leads", capture_source="tiktok_comment")["items"]
    assert [lead["lead_id"] for lead in comments] == [reef["lead_id"]]
    page = get(live, token, "/social-leads", limit=1)
    rest = get(live, token, "/social-leads", limit=1, cursor=page["next_cursor"])
    assert [page["items"][0]["lead_id"], rest["items"][0]["lead_id"]] == [kelp["lead_id"], reef["lead_id"]]
    assert get(live, live.dev_token("ws-else"), "/social-leads")["items"] == []

    # The leads table's stream announces each person once and each later interaction once; the
    # duplicate delivery adds nothing.
    announced = [e for e in live.drain_bus_events() if e["detail"].get("workspace_id") == workspace]
    assert sorted((e["detail-type"], e["detail"]["lead_id"]) for e in announced) == sorted(
        [
            ("SocialLeadCaptured", kelp["lead_id"]),
            ("SocialLeadCaptured", reef["lead_id"]),
            ("SocialLeadActivity", reef["lead_id"]),
        ]
    )
    [activity] = [e for e in announced if e["detail-type"] == "SocialLeadActivity"]
    assert activity["detail"]["interaction"]["kind"] == "dm"
    assert activity["detail"]["interaction_count"] == 2
    assert len({e["detail"]["event_id"] for e in announced}) == 3

    # Tokens live in Secrets Manager only.
    ddb = client("dynamodb", live.aws_url)
    stored = json.dumps(ddb.scan(TableName=live.provisioned.tables["IntegrationsTable"])["Items"])
    assert not any(secret in stored for secret in live.emulator.state.issued)

    revocations = live.emulator.state.revoked.count(open_id)
    gone = requests.delete(
        live.api_url + f"/integrations/tiktok/{integration_id}", headers=auth(token), timeout=30
    )
    assert gone.json() == {"integration_id": integration_id, "revoked": True}
    assert live.emulator.state.revoked.count(open_id) == revocations + 1
    assert get(live, token, "/integrations")["items"] == []
    sm = client("secretsmanager", live.aws_url)
    assert not [s for s in sm.list_secrets()["SecretList"] if s["Name"].endswith(integration_id)]


def test_the_stream_announces_in_the_background(live):
    token = live.dev_token("ws-stream")
    open_id = live.emulator.state.add_account(display_name="Stream Shop").open_id
    connect(live, token, open_id)
    send(live, "comment", open_id, "Background?", author="tide.watcher")
    [lead] = get(live, token, "/social-leads")["items"]
    # Nobody delivers the stream's records but its poller: the event reaches the bus on its own.
    deadline = time.monotonic() + 15
    announced: list[str] = []
    while not announced and time.monotonic() < deadline:
        time.sleep(0.2)
        announced = [
            e["detail-type"]
            for e in live.drain_bus_events(settle=False)
            if e["detail"]["lead_id"] == lead["lead_id"]
        ]
    assert announced == ["SocialLeadCaptured"]


def test_a_high_intent_comment_becomes_a_high_intent_lead(live):
    token = live.dev_token("ws-intent")
    open_id = live.emulator.state.add_account(display_name="Intent Shop").open_id
    connect(live, token, open_id)
    sent = send(live, "high_intent", open_id, "Where do I pay?")
    assert sent["response"] == {"status": "accepted"}
    [lead] = requests.get(live.api_url + "/social-leads", headers=auth(token), timeout=30).json()["items"]
    assert (lead["message"], lead["high_intent"]) == ("Where do I pay?", True)


def test_the_scheduled_refresher_rotates_a_token_that_expires_soon(live):
    state = live.emulator.state
    open_id = state.add_account(display_name="Short Lived Shop").open_id
    # A 4 s token is due for refresh after half its lifetime.
    saved, state.expires_in = state.expires_in, 4
    try:
        connect(live, live.dev_token("ws-refresh"), open_id)
    finally:
        state.expires_in = saved
    time.sleep(2.5)
    refreshes = state.calls["token"]
    run = requests.post(
        live.api_url + "/local/schedules/TokenRefreshFunction/run", json={}, timeout=60
    ).json()
    assert run["ok"], run
    assert run["result"]["refreshed"] >= 1
    assert state.calls["token"] > refreshes
    # The rotated pair is the only live one: the refresh token used is dead.
    live_refresh = [r for r in state.refresh_tokens.values() if r["open_id"] == open_id and not r["dead"]]
    assert len(live_refresh) == 1


def test_only_the_templates_schedules_can_be_run(live):
    # The lead publisher reads the leads table's stream: it has no schedule to run any more.
    for function in ("LeadPublisherFunction", "NoSuchFunction"):
        resp = requests.post(live.api_url + f"/local/schedules/{function}/run", json={}, timeout=30)
        assert (resp.status_code, resp.json()["error"]["code"]) == (404, "unknown_schedule")
    assert live.streams is not None
    assert sorted(live.streams.sources) == ["LeadPublisherFunction.LeadsStream"]


def test_deny_at_the_emulator_comes_back_as_access_denied(live):
    start = requests.get(
        live.api_url + "/integrations/tiktok/oauth/start", headers=auth(live.dev_token("ws-deny")), timeout=30
    ).json()
    authorize = start["authorize_url"]
    denied = requests.post(
        authorize.split("?")[0],
        data={**dict(parse_qsl(urlsplit(authorize).query)), "decision": "deny"},
        allow_redirects=False,
        timeout=10,
    )
    landing = requests.get(denied.headers["Location"], allow_redirects=False, timeout=30)
    assert (
        landing.headers["Location"] == live.api_url + "/integrations/tiktok?status=error&reason=access_denied"
    )


# -- the console and the local helpers ------------------------------------------------------------------------
def test_the_console_is_served_where_the_callback_lands(live):
    for path in ("/", "/integrations/tiktok?status=connected&integration_id=x"):
        page = requests.get(live.api_url + path, timeout=10)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert 'data-testid="connect"' in page.text
    form_post = requests.post(live.api_url + "/local/dev-token", data={"workspace": "ws"}, timeout=10)
    assert form_post.status_code == 415  # a cross-site form cannot mint tokens or send events
    script = requests.get(live.api_url + "/local/console/app.js", timeout=10)
    assert script.status_code == 200
    assert requests.get(live.api_url + "/local/console/../stack.py", timeout=10).status_code == 404
    style = requests.get(live.api_url + "/local/console/style.css", timeout=10)
    assert style.headers["content-type"].startswith("text/css")
    favicon = requests.get(live.api_url + "/favicon.ico", timeout=10)
    if (CONSOLE_DIR / "favicon.svg").is_file():
        assert (favicon.status_code, favicon.headers["content-type"].split(";")[0]) == (200, "image/svg+xml")
    else:
        assert favicon.status_code == 204


def test_pretty_logs_keep_warnings_short_and_leave_out_the_rest(capsys):
    pretty_sink("Fn", json.dumps({"level": "INFO", "message": "quiet", "service": "x"}))
    pretty_sink("Fn", json.dumps({"level": "ERROR", "message": "it broke", "service": "x"}))
    pretty_sink("Fn", "Traceback (most recent call last):")
    assert capsys.readouterr().out.splitlines() == [
        "[Fn] ERROR it broke",
        "[Fn] Traceback (most recent call last):",
    ]


def test_the_dev_token_endpoint_and_cli_mint_tokens_the_gateway_accepts(live):
    minted = requests.post(live.api_url + "/local/dev-token", json={"workspace": "ws-cli"}, timeout=10).json()
    printed = subprocess.run(
        [sys.executable, "-m", "orcapulse_local", "token", "--workspace", "ws-cli", "--user", "u-cli"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    for token in (minted["token"], printed):
        resp = requests.get(live.api_url + "/integrations", headers=auth(token), timeout=30)
        assert (resp.status_code, resp.json()) == (200, {"items": []})
    assert jwt.decode(printed, options={"verify_signature": False})["sub"] == "u-cli"


def test_the_webhook_command_writes_as_an_author(live):
    env = {**os.environ, "LOCAL_TIKTOK_PORT": str(urlsplit(live.tiktok_url).port)}
    command = [sys.executable, "-m", "orcapulse_local", "webhook", "--event", "dm", "--author", "kelp.fan"]
    sent = [
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        for _ in range(2)
    ]
    assert [done.returncode for done in sent] == [0, 0], sent
    assert [json.loads(done.stdout)["status"] for done in sent] == [200, 200]


def test_the_demo_command_tells_the_story_against_a_running_stack(live):
    env = {**os.environ, "LOCAL_API_PORT": str(urlsplit(live.api_url).port)}
    done = subprocess.run(
        [sys.executable, "-m", "orcapulse_local", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for step in (
        "1. Connect",
        "2. A TikTok comment arrives: a new person",
        "3. A TikTok direct message from the same person: the same lead, 2 interactions",
        "4. TikTok delivers the comment again",
        "5. Another person",
        "6. List and filter the people, open a timeline",
        "7. The event bus: each person once, each later interaction once",
        "8. Disconnect",
        "9. Connect a TikTok business account",
        "10. A business DM and a business comment from one person: one lead",
        "11. TikTok drops a comment's webhook; the catch-up finds it",
        "12. Disconnect the business account",
        "Done:",
    ):
        assert step in done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_prints_what_a_newcomer_needs_and_stops_cleanly_on_ctrl_c():
    ports = {"LOCAL_API_PORT": free_port(), "LOCAL_TIKTOK_PORT": free_port(), "LOCAL_AWS_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orcapulse_local", "serve", "--no-schedules"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C" in line or not line:
                break
        banner = "".join(lines)
        api = f"http://127.0.0.1:{ports['LOCAL_API_PORT']}"
        assert f"{api}/" in banner
        assert f"http://127.0.0.1:{ports['LOCAL_TIKTOK_PORT']}" in banner
        assert f"http://127.0.0.1:{ports['LOCAL_AWS_PORT']}" in banner
        assert config.LOCAL_CLIENT_KEY in banner
        assert config.LOCAL_CLIENT_SECRET in banner
        assert "make token" in banner
        token = mint()
        assert requests.get(f"{api}/integrations", headers=auth(token), timeout=30).status_code == 200
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out
    assert "Stopped." in out
    assert "Traceback" not in out
    for port in ports.values():
        with socket.socket() as probe:
            # Nothing listens any more (SO_REUSEADDR only tolerates the closed connections' TIME_WAIT).
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
    assert session_members(proc.pid) == []  # no function worker outlived the stack


def session_members(session_id: int) -> list[int]:
    """Live processes of a session (field 6 of /proc/<pid>/stat)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members
