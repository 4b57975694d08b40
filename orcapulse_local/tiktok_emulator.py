"""A TikTok emulator on localhost: the documented endpoints the product uses, served over HTTP
from the same stateful model the tests use (:class:`TikTokState`), plus a signed-webhook sender.

TikTok's side:
- ``GET /v2/auth/authorize/`` — the consent page (HTML) with Approve and Deny; a form POST to the
  same path with ``decision=approve|deny`` redirects to ``redirect_uri`` with ``code``, ``scopes``,
  ``state`` (or ``error=access_denied``), as Login Kit does;
- ``POST /v2/oauth/token/`` (authorization code with hex-S256 PKCE, refresh with rotation),
  ``GET /v2/user/info/``, ``POST /v2/oauth/revoke/``.

Local controls (never part of TikTok's API): ``GET /local/state`` (accounts, call counts, revoked
accounts — never a token), ``POST /local/accounts``, ``POST /local/webhooks`` (send a signed
event to the product's webhook URL), ``POST /local/webhooks/{id}/redeliver`` (the same delivery
again, as TikTok's at-least-once retries do) and ``POST /local/faults`` (make the next calls of an
endpoint fail)."""

from __future__ import annotations

import html
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from orcapulse_local import config
from orcapulse_local.serving import LocalServer
from orcapulse_local.tiktok_state import ENDPOINTS, TikTokState

AUTHORIZE_PATH = "/v2/auth/authorize/"
EVENT_KINDS = {
    "comment": "comment.update",
    "dm": "im_receive_msg",
    "high_intent": "im_receive_high_intent_comment",
    "removed": "authorization.removed",
}
MAX_CONTROL_BODY = 64 * 1024


def local_state() -> TikTokState:
    """The emulator's model: the local app's fixed credentials and the seed accounts."""
    state = TikTokState(client_key=config.LOCAL_CLIENT_KEY, client_secret=config.LOCAL_CLIENT_SECRET)
    for open_id, name in config.SEED_ACCOUNTS:
        state.add_account(open_id, display_name=name)
    return state


# -- webhook events ---------------------------------------------------------------------------------
_ids = itertools.count(7_300_000_000_000_000_000 + int(time.time()))


def event_content(kind: str, open_id: str, text: str = "", *, author: str | None = None) -> dict[str, Any]:
    """The ``content`` of a webhook event of ``kind`` (comment, dm, high_intent, removed), shaped
    as TikTok documents it. Comment ids come as JSON numbers (int64), as TikTok sends them."""
    now_ms = int(time.time() * 1000)
    if kind == "comment":
        return {
            "comment_id": next(_ids),
            "video_id": 7_290_000_000_000_000_001,
            "parent_comment_id": 0,
            "comment_type": "comment",
            "comment_action": "insert",
            "text": text,
            "timestamp": now_ms,
            "unique_identifier": author or "orca.lover.22",
        }
    if kind == "high_intent":
        return {
            "comment_id": next(_ids),
            "comment_text": text,
            "unique_identifier": author or "ready.to.buy",
            "is_follower": True,
            "timestamp": now_ms,
        }
    if kind == "dm":
        sender = f"{next(_ids)}"
        return {
            "conversation_id": f"0:1:{sender}:{open_id}",
            "message_id": f"{next(_ids)}",
            "timestamp": now_ms,
            "type": "text",
            "text": {"body": text},
            "from": author or "aquarium.buyer",
            "from_user": {"id": sender},
            "to": open_id,
            "to_user": {"id": open_id},
        }
    if kind == "removed":
        return {"reason": 1}
    raise ValueError(f"unknown event kind {kind!r}; one of {', '.join(EVENT_KINDS)}")


@dataclass
class Delivery:
    id: str
    event: str
    open_id: str
    body: bytes
    status: int | None = None
    response: Any = None

    def summary(self) -> dict[str, Any]:
        return {
            "delivery_id": self.id,
            "event": self.event,
            "open_id": self.open_id,
            "status": self.status,
            "response": self.response,
        }


def deliver(state: TikTokState, url: str, body: bytes, timeout: float = 20.0) -> tuple[int, Any]:
    """POST ``body`` to ``url`` signed as TikTok signs it; the answer's status and JSON body."""
    resp = requests.post(
        url,
        data=body,
        headers={"Content-Type": "application/json", "TikTok-Signature": state.sign(body)},
        timeout=timeout,
    )
    try:
        return resp.status_code, resp.json() if resp.content else None
    except ValueError:
        return resp.status_code, resp.text


# -- the consent page -------------------------------------------------------------------------------
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #121212; color: #f1f1f2; margin: 0; }}
main {{ max-width: 28rem; margin: 3rem auto; background: #1e1e1e; padding: 2rem; border-radius: 12px; }}
h1 {{ font-size: 1.3rem; margin-top: 0; }} .note {{ color: #a0a0a8; font-size: .85rem; }}
label {{ display: block; margin: .4rem 0; }} fieldset {{ border: 1px solid #333; border-radius: 8px; }}
.buttons {{ display: flex; gap: .75rem; margin-top: 1.2rem; }}
button {{ flex: 1; padding: .7rem; border-radius: 6px; border: 0; font-size: 1rem; cursor: pointer; }}
.approve {{ background: #fe2c55; color: white; order: 2; }} .deny {{ background: #3a3a3f; color: #f1f1f2; }}
.error {{ color: #ff8a8a; }}
</style></head><body><main>{body}</main></body></html>"""


def _consent_page(params: dict[str, str], state: TikTokState) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k
        in (
            "client_key",
            "scope",
            "redirect_uri",
            "state",
            "response_type",
            "code_challenge",
            "code_challenge_method",
        )
    )
    scopes = [s.strip() for s in params.get("scope", "").split(",") if s.strip()]
    scope_boxes = "".join(
        f'<label><input type="checkbox" name="granted_scope" value="{html.escape(s)}" checked> '
        f"{html.escape(s)}</label>"
        for s in scopes
    )
    accounts = list(state.accounts.values())
    account_radios = "".join(
        f'<label><input type="radio" name="open_id" value="{html.escape(a.open_id)}"'
        f'{" checked" if i == 0 else ""} data-testid="account-{html.escape(a.open_id)}"> '
        f"{html.escape(a.display_name)} <span class='note'>({html.escape(a.open_id)})</span></label>"
        for i, a in enumerate(accounts)
    )
    body = f"""
<h1>Log in to <strong>{html.escape(params.get("client_key", ""))}</strong> with TikTok</h1>
<p class="note">TikTok emulator on this machine — no real TikTok account is involved.</p>
<form method="post" action="{AUTHORIZE_PATH}">
{hidden}
<!-- Approve comes first in the form, so Enter in the name field approves rather than denies. -->
<fieldset><legend>Continue as</legend>{account_radios}
<label><input type="radio" name="open_id" value="new"> A new account named
<input name="display_name" value="New Orca Fan" size="16"></label></fieldset>
<input type="hidden" name="scopes_submitted" value="1">
<fieldset><legend>This app will be able to</legend>{scope_boxes}</fieldset>
<div class="buttons">
<button class="approve" type="submit" name="decision" value="approve">Approve</button>
<button class="deny" type="submit" name="decision" value="deny">Deny</button>
</div></form>"""
    return _PAGE.format(title="TikTok — authorize app", body=body)


def _error_page(message: str) -> str:
    return _PAGE.format(
        title="TikTok — error",
        body=f'<h1>Something went wrong</h1><p class="error">{html.escape(message)}</p>',
    )


# -- the server ---------------------------------------------------------------------------------------
class TikTokEmulator:
    """The emulator on ``host:port`` (port 0 takes a free one). ``webhook_url`` is where the
    sender delivers events; ``redirect_uris`` are the app's registered callback URLs."""

    def __init__(
        self,
        state: TikTokState | None = None,
        *,
        host: str = config.HOST,
        port: int = 0,
        webhook_url: str | None = None,
        redirect_uris: tuple[str, ...] = (),
    ):
        self.state = state or local_state()
        self.webhook_url = webhook_url
        self.redirect_uris = set(redirect_uris)
        self.deliveries: dict[str, Delivery] = {}
        self.last_authorized: str | None = None
        self._lock = threading.Lock()
        self._server: LocalServer[TikTokEmulator] = LocalServer((host, port), _Handler, self, "tiktok")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    # -- Login Kit ---------------------------------------------------------------------------------
    def check_authorize(self, params: dict[str, str]) -> str | None:
        """Why TikTok would refuse this authorize request, or None."""
        if params.get("client_key") != self.state.client_key:
            return "This app (client_key) is not known to TikTok."
        if params.get("response_type") != "code":
            return "response_type must be code."
        redirect = params.get("redirect_uri", "")
        if self.redirect_uris and redirect not in self.redirect_uris:
            return "redirect_uri is not registered for this app."
        if not redirect:
            return "redirect_uri is missing."
        if not params.get("scope"):
            return "scope is missing."
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return "code_challenge_method must be S256."
        return None

    def decide(self, form: list[tuple[str, str]]) -> str:
        """The consent form's answer: the redirect location."""
        params = dict(form)
        redirect = params["redirect_uri"]
        sep = "&" if urlsplit(redirect).query else "?"
        if params.get("decision") != "approve":
            query = {"error": "access_denied", "error_description": "The user denied the request."}
            if params.get("state"):
                query["state"] = params["state"]
            return f"{redirect}{sep}{urlencode(query)}"
        open_id = params.get("open_id") or next(iter(self.state.accounts))
        if open_id == "new":
            open_id = self.state.add_account(
                display_name=params.get("display_name") or "New Orca Fan"
            ).open_id
        requested = [s.strip() for s in params.get("scope", "").split(",") if s.strip()]
        if "scopes_submitted" in params:
            # The consent page's boxes: the user may untick a scope, as on TikTok.
            ticked = {v for k, v in form if k == "granted_scope"}
            granted = ",".join(s for s in requested if s in ticked)
        else:
            granted = ",".join(requested)  # a scripted approval grants what was asked for
        code = self.state.authorize(
            client_key=params["client_key"],
            redirect_uri=redirect,
            scope=params.get("scope", ""),
            code_challenge=params.get("code_challenge") or None,
            open_id=open_id,
            granted_scopes=granted,
        )
        self.last_authorized = open_id
        query = {"code": code, "scopes": granted}
        if params.get("state"):
            query["state"] = params["state"]
        return f"{redirect}{sep}{urlencode(query)}"

    # -- webhooks ----------------------------------------------------------------------------------
    def send_event(self, kind: str, open_id: str | None = None, text: str = "") -> Delivery:
        """Build, sign and deliver an event of ``kind`` (comment, dm, removed) to the webhook URL."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"event must be one of {', '.join(EVENT_KINDS)}")
        open_id = open_id or self.last_authorized or next(iter(self.state.accounts))
        if kind != "removed" and not text:
            text = "Hi! How much is the orca plush, and do you ship to Lisbon?"
        body = self.state.envelope(EVENT_KINDS[kind], open_id, event_content(kind, open_id, text))
        delivery = Delivery(id=secrets.token_hex(6), event=EVENT_KINDS[kind], open_id=open_id, body=body)
        with self._lock:
            self.deliveries[delivery.id] = delivery
        return self._deliver(delivery)

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a past delivery's exact body again, freshly signed, as TikTok's retries do."""
        previous = self.deliveries[delivery_id]
        again = Delivery(
            id=secrets.token_hex(6), event=previous.event, open_id=previous.open_id, body=previous.body
        )
        with self._lock:
            self.deliveries[again.id] = again
        return self._deliver(again)

    def _deliver(self, delivery: Delivery) -> Delivery:
        if not self.webhook_url:
            raise ValueError("the emulator has no webhook URL")
        delivery.status, delivery.response = deliver(self.state, self.webhook_url, delivery.body)
        return delivery

    def snapshot(self) -> dict[str, Any]:
        """What the emulator knows, without a single token or code."""
        with self.state.lock:
            live: dict[str, int] = {}
            for record in self.state.access_tokens.values():
                if not record["revoked"] and record["expires_at"] > time.time():
                    live[record["open_id"]] = live.get(record["open_id"], 0) + 1
            return {
                "client_key": self.state.client_key,
                "webhook_url": self.webhook_url,
                "accounts": [
                    {
                        "open_id": a.open_id,
                        "display_name": a.display_name,
                        "live_access_tokens": live.get(a.open_id, 0),
                        "revocations": self.state.revoked.count(a.open_id),
                    }
                    for a in self.state.accounts.values()
                ],
                "calls": dict(self.state.calls),
                "revoked": list(self.state.revoked),
                "last_authorized": self.last_authorized,
                "deliveries": len(self.deliveries),
            }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalServer[TikTokEmulator]
    server_version = "tiktok-emulator"

    # -- plumbing ---------------------------------------------------------------------------------
    def _read(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        if length < 0 or length > MAX_CONTROL_BODY:
            raise ValueError("body too large")
        return self.rfile.read(length) if length else b""

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, document: Any) -> None:
        self._reply(status, json.dumps(document).encode(), "application/json")

    def _html(self, status: int, page: str) -> None:
        self._reply(status, page.encode(), "text/html; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self._reply(302, b"", "text/plain", {"Location": location})

    def log_message(self, format: str, *args: Any) -> None:
        pass  # request lines could carry codes in query strings: never logged

    @property
    def emulator(self) -> TikTokEmulator:
        return self.server.owner

    def _fault(self, endpoint: str) -> bool:
        fault = self.emulator.state.take_fault(endpoint)
        if fault is None:
            return False
        if fault.timeout:
            time.sleep(10)  # longer than the product's read timeout
            self.close_connection = True
            return True
        self._json(fault.status, fault.body or {})
        return True

    # -- routes -----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path == AUTHORIZE_PATH:
            problem = self.emulator.check_authorize(query)
            if problem:
                self._html(400, _error_page(problem))
            else:
                self._html(200, _consent_page(query, self.emulator.state))
        elif parts.path == "/v2/user/info/":
            if not self._fault("user_info"):
                status, body = self.emulator.state.user_info(
                    self.headers.get("Authorization"), query.get("fields")
                )
                self._json(status, body)
        elif parts.path == "/local/state":
            self._json(200, self.emulator.snapshot())
        elif parts.path == "/":
            self._json(
                200,
                {
                    "service": "tiktok-emulator",
                    "endpoints": [AUTHORIZE_PATH, "/v2/oauth/token/", "/v2/user/info/", "/v2/oauth/revoke/"],
                },
            )
        else:
            self._json(404, {"error": "not_found"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        try:
            raw = self._read()
        except ValueError:
            self._json(413, {"error": "too_large"})
            return
        if path in ("/v2/oauth/token/", "/v2/oauth/revoke/"):
            endpoint = "token" if path.endswith("token/") else "revoke"
            if not self._fault(endpoint):
                form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
                state = self.emulator.state
                status, body = state.token(form) if endpoint == "token" else state.revoke(form)
                self._json(status, body)
        elif path == AUTHORIZE_PATH:
            fields = parse_qsl(urlsplit(self.path).query, keep_blank_values=True)
            fields += parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
            problem = self.emulator.check_authorize(dict(fields))
            if problem:
                self._html(400, _error_page(problem))
            else:
                self._redirect(self.emulator.decide(fields))
        elif path.startswith("/local/"):
            if self.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
                self._json(415, {"error": "json_required"})  # no cross-site form can reach the controls
                return
            self._control(path, raw)
        else:
            self._json(404, {"error": "not_found"})

    def _control(self, path: str, raw: bytes) -> None:
        try:
            doc = json.loads(raw or b"{}")
            if not isinstance(doc, dict):
                raise ValueError
        except ValueError:
            self._json(400, {"error": "invalid_json"})
            return
        emulator = self.emulator
        try:
            if path == "/local/webhooks":
                delivery = emulator.send_event(
                    str(doc.get("event", "")),
                    str(doc.get("open_id") or "") or None,
                    str(doc.get("text") or ""),
                )
                self._json(200, delivery.summary())
            elif path.startswith("/local/webhooks/") and path.endswith("/redeliver"):
                delivery_id = path.removeprefix("/local/webhooks/").removesuffix("/redeliver")
                if delivery_id not in emulator.deliveries:
                    self._json(404, {"error": "unknown_delivery"})
                    return
                self._json(200, emulator.redeliver(delivery_id).summary())
            elif path == "/local/accounts":
                account = emulator.state.add_account(
                    str(doc.get("open_id") or "") or None,
                    display_name=str(doc.get("display_name") or "Orca Fan"),
                )
                self._json(201, {"open_id": account.open_id, "display_name": account.display_name})
            elif path == "/local/faults":
                endpoint = str(doc.get("endpoint", ""))
                if endpoint not in ENDPOINTS:
                    raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}")
                times = int(doc.get("times", 1))
                if doc.get("timeout"):
                    emulator.state.timeout_next(endpoint, times)
                else:
                    emulator.state.fail_next(endpoint, int(doc.get("status", 500)), doc.get("body"), times)
                self._json(200, {"endpoint": endpoint, "pending": len(emulator.state.faults[endpoint])})
            else:
                self._json(404, {"error": "not_found"})
        except (ValueError, TypeError) as exc:
            self._json(400, {"error": "invalid_request", "message": str(exc)})
        except requests.RequestException as exc:
            self._json(502, {"error": "webhook_unreachable", "message": type(exc).__name__})
