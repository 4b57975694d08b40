"""A TikTok emulator on localhost, served by Werkzeug: the documented endpoints the product uses,
from the same stateful models the tests use (:class:`TikTokState`, :class:`BusinessState`), plus a
signed-webhook sender.

TikTok's side:
- ``GET /v2/auth/authorize/`` — the consent page (HTML, naming the app) with Approve and Deny; a
  form POST to the same path with ``decision=approve|deny`` redirects to ``redirect_uri`` with
  ``code``, ``scopes``, ``state`` (or ``error=access_denied``), as Login Kit does; a request with
  the Business app's ``app_id`` as ``client_key`` connects a business account;
- ``POST /v2/oauth/token/`` (authorization code with hex-S256 PKCE, refresh with rotation),
  ``GET /v2/user/info/``, ``POST /v2/oauth/revoke/``;
- TikTok API for Business under ``/open_api/v1.3/`` (``business_emulator``).

Local controls (never part of TikTok's API; JSON only, so no cross-site form reaches them):
``GET /local/state`` (accounts, call counts, revoked accounts — never a token),
``POST /local/accounts``, ``POST /local/webhooks`` (send a signed event to the product's webhook
URL; an optional ``author`` writes as that person; ``hold`` lists a business comment without
delivering it), ``POST /local/webhooks/{id}/redeliver`` (the
same delivery again, as TikTok's at-least-once retries do) and ``POST /local/faults`` (make the
next calls of an endpoint fail; ``business.<endpoint>`` for the Business API)."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from orcapulse_local import ads_emulator, config
from orcapulse_local.business_emulator import BusinessEmulator
from orcapulse_local.business_state import PREFIX
from orcapulse_local.consent import authorize_problem, decide
from orcapulse_local.consent_page import AUTHORIZE_PATH, consent_page, error_page
from orcapulse_local.serving import AccessLog, LocalServer
from orcapulse_local.tiktok_state import ENDPOINTS, TikTokState
from orcapulse_local.webhook_events import EVENT_KINDS, Delivery, deliver, event_content

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_ROUTES = Map(
    [
        Rule("/", endpoint="index", methods=["GET"]),
        Rule(AUTHORIZE_PATH, endpoint="consent", methods=["GET"]),
        Rule(AUTHORIZE_PATH, endpoint="decision", methods=["POST"]),
        Rule("/v2/oauth/token/", endpoint="token", methods=["POST"]),
        Rule("/v2/oauth/revoke/", endpoint="revoke", methods=["POST"]),
        Rule("/v2/user/info/", endpoint="user_info", methods=["GET"]),
        Rule("/local/state", endpoint="snapshot", methods=["GET"]),
        Rule("/local/accounts", endpoint="accounts", methods=["POST"]),
        Rule("/local/webhooks", endpoint="webhooks", methods=["POST"]),
        Rule("/local/webhooks/<delivery_id>/redeliver", endpoint="redelivery", methods=["POST"]),
        Rule("/local/faults", endpoint="faults", methods=["POST"]),
    ]
)


CONTROLS = ("accounts", "webhooks", "redelivery", "faults")


class _Request(Request):
    max_content_length = 64 * 1024  # controls and OAuth forms are small


def local_state() -> TikTokState:
    """The emulator's model: the local app's fixed credentials and the seed accounts."""
    state = TikTokState(client_key=config.LOCAL_CLIENT_KEY, client_secret=config.LOCAL_CLIENT_SECRET)
    for open_id, name in config.SEED_ACCOUNTS:
        state.add_account(open_id, display_name=name)
    return state


def _json(status: int, document: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
    return Response(
        json.dumps(document),
        status,
        [("Content-Type", "application/json"), ("Cache-Control", "no-store"), *headers],
    )


def _control_document(request: Request) -> dict[str, Any] | Response:
    """A control request's JSON object, or why it is refused."""
    if request.mimetype != "application/json":
        return _json(415, {"error": "json_required"})  # no cross-site form can reach the controls
    doc = request.get_json(silent=True) if request.get_data() else {}
    return doc if isinstance(doc, dict) else _json(400, {"error": "invalid_json"})


def _html(status: int, page: str) -> Response:
    return Response(
        page, status, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
    )


class TikTokEmulator:
    """The emulator on ``host:port`` (port 0 takes a free one). ``webhook_url`` is where the
    sender delivers events; ``redirect_uris`` are the app's registered callback URLs;
    ``app_name`` is what the consent page asks the user to log in to."""

    def __init__(
        self,
        state: TikTokState | None = None,
        *,
        host: str = config.HOST,
        port: int = 0,
        webhook_url: str | None = None,
        redirect_uris: tuple[str, ...] = (),
        app_name: str = config.LOCAL_APP_NAME,
        access_log: AccessLog | None = None,
        business: BusinessEmulator | None = None,
    ):
        self.state = state or local_state()
        self.business = business or BusinessEmulator()
        self.webhook_url = webhook_url
        self.redirect_uris = set(redirect_uris)
        self.app_name = app_name
        self.deliveries: dict[str, Delivery] = {}
        self.last_authorized: str | None = None
        self._lock = threading.Lock()
        self._server = LocalServer(ads_emulator.mount(self, self.wsgi), host, port, "tiktok", access_log)

    @property
    def url(self) -> str:
        """The emulator's base URL."""
        return self._server.url

    def start(self) -> None:
        """Serve on a background thread."""
        self._server.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.stop()

    # -- Login Kit ---------------------------------------------------------------------------------
    def check_authorize(self, params: dict[str, str]) -> str | None:
        """Why TikTok would refuse this authorize request, or None."""
        keys = (self.state.client_key, self.business.state.app_id)
        return authorize_problem(params, client_keys=keys, redirect_uris=self.redirect_uris)

    def decide(self, form: list[tuple[str, str]]) -> str:
        """The consent form's answer: the redirect location."""
        location, open_id = decide(form, self.state, self.business)
        self.last_authorized = open_id or self.last_authorized
        return location

    # -- webhooks ----------------------------------------------------------------------------------
    def send_event(
        self,
        kind: str,
        open_id: str | None = None,
        text: str = "",
        author: str | None = None,
        hold: bool = False,
    ) -> Delivery:
        """Build, sign and deliver an event of ``kind`` (comment, dm, high_intent, removed) to the
        webhook URL; ``author`` names who wrote it (the same author is the same person). For a
        business account, comments and DMs are listed by its Business API too; ``hold`` lists a
        comment without delivering it (a webhook TikTok dropped; redelivering it is a late webhook)."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"event must be one of {', '.join(EVENT_KINDS)}")
        open_id = open_id or self.last_authorized or next(iter(self.state.accounts))
        business = open_id in self.business.state.accounts
        if hold and not (business and kind == "comment"):
            raise ValueError("only a business account's comment can be held")
        if kind != "removed" and not text:
            text = "Hi! How much is the orca plush, and do you ship to Lisbon?"
        if business and kind in ("comment", "dm"):
            build = self.business.comment if kind == "comment" else self.business.message
            content = build(open_id, text, author or None, **({"hold": hold} if hold else {}))
        else:
            content = event_content(kind, open_id, text, author=author or None)
        body = (self.business.state if business else self.state).envelope(EVENT_KINDS[kind], open_id, content)
        delivery = Delivery(id=secrets.token_hex(6), event=EVENT_KINDS[kind], open_id=open_id, body=body)
        if hold:  # kept, so a late delivery can be sent with /redeliver
            with self._lock:
                self.deliveries[delivery.id] = delivery
            return delivery
        return self._deliver(delivery)

    def redeliver(self, delivery_id: str) -> Delivery:
        """Send a past delivery's exact body again, freshly signed, as TikTok's retries do."""
        previous = self.deliveries[delivery_id]
        return self._deliver(
            Delivery(
                id=secrets.token_hex(6), event=previous.event, open_id=previous.open_id, body=previous.body
            )
        )

    def _deliver(self, delivery: Delivery) -> Delivery:
        business = delivery.open_id in self.business.state.accounts
        kind = next(k for k, e in EVENT_KINDS.items() if e == delivery.event)
        url = (business and self.business.callback_url(kind)) or self.webhook_url
        if not url:
            raise ValueError("the emulator has no webhook URL")
        with self._lock:
            self.deliveries[delivery.id] = delivery
        signer = self.business.state if business else self.state
        delivery.status, delivery.response = deliver(signer, url, delivery.body)
        return delivery

    def snapshot(self) -> dict[str, Any]:
        """What the emulator knows, without a single token or code."""
        with self.state.lock:
            live: dict[str, int] = {}
            for record in self.state.access_tokens.values():
                if not record["revoked"] and record["expires_at"] > time.time():
                    live[record["open_id"]] = live.get(record["open_id"], 0) + 1
            accounts = [
                {
                    "open_id": a.open_id,
                    "display_name": a.display_name,
                    "live_access_tokens": live.get(a.open_id, 0),
                    "revocations": self.state.revoked.count(a.open_id),
                }
                for a in self.state.accounts.values()
            ]
            return {
                "client_key": self.state.client_key,
                "webhook_url": self.webhook_url,
                "accounts": accounts,
                "calls": dict(self.state.calls),
                "revoked": list(self.state.revoked),
                "last_authorized": self.last_authorized,
                "deliveries": len(self.deliveries),
                "business": self.business.snapshot(),
            }

    # -- HTTP --------------------------------------------------------------------------------------
    def wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The emulator as a WSGI application."""
        if environ.get("PATH_INFO", "").startswith(PREFIX):
            return self.business.wsgi(environ, start_response)
        request = _Request(environ)
        try:
            endpoint, args = _ROUTES.bind_to_environ(environ).match()
            if endpoint in CONTROLS:
                doc = _control_document(request)
                response = doc if isinstance(doc, Response) else getattr(self, f"_on_{endpoint}")(doc, **args)
            else:
                response = getattr(self, f"_on_{endpoint}")(request, **args)
        except HTTPException as exc:  # an unknown path or method is a 404, as on TikTok
            too_large = exc.code == 413
            response = _json(413 if too_large else 404, {"error": "too_large" if too_large else "not_found"})
        return response(environ, start_response)  # type: ignore[no-any-return]

    def _fault(self, endpoint: str) -> Response | None:
        fault = self.state.take_fault(endpoint)
        if fault is None:
            return None
        if fault.timeout:
            time.sleep(10)  # longer than the product's read timeout
            return _json(504, {})
        return _json(fault.status, fault.body or {})

    def _on_index(self, request: Request) -> Response:
        endpoints = [AUTHORIZE_PATH, "/v2/oauth/token/", "/v2/user/info/", "/v2/oauth/revoke/"]
        return _json(200, {"service": "tiktok-emulator", "endpoints": endpoints})

    def _on_consent(self, request: Request) -> Response:
        query = request.args.to_dict()
        problem = self.check_authorize(query)
        if problem:
            return _html(400, error_page(problem))
        business = self.business.is_business(query.get("client_key"))
        accounts = self.business.accounts() if business else self.state.accounts.values()
        return _html(200, consent_page(query, accounts, self.app_name))

    def _on_decision(self, request: Request) -> Response:
        fields = [*request.args.items(multi=True), *request.form.items(multi=True)]
        problem = self.check_authorize(dict(fields))
        if problem:
            return _html(400, error_page(problem))
        return Response(status=302, headers={"Location": self.decide(fields), "Cache-Control": "no-store"})

    def _on_token(self, request: Request) -> Response:
        fault = self._fault("token")
        return fault or _json(*self.state.token(request.form.to_dict()))

    def _on_revoke(self, request: Request) -> Response:
        fault = self._fault("revoke")
        return fault or _json(*self.state.revoke(request.form.to_dict()))

    def _on_user_info(self, request: Request) -> Response:
        fault = self._fault("user_info")
        return fault or _json(
            *self.state.user_info(request.headers.get("Authorization"), request.args.get("fields"))
        )

    def _on_snapshot(self, request: Request) -> Response:
        return _json(200, self.snapshot())

    def _on_accounts(self, doc: dict[str, Any]) -> Response:
        open_id = str(doc.get("open_id") or "") or None
        account = self.state.add_account(open_id, display_name=str(doc.get("display_name") or "Orca Fan"))
        return _json(201, {"open_id": account.open_id, "display_name": account.display_name})

    def _on_webhooks(self, doc: dict[str, Any]) -> Response:
        return self._sending(
            lambda: self.send_event(
                str(doc.get("event", "")),
                str(doc.get("open_id") or "") or None,
                str(doc.get("text") or ""),
                str(doc.get("author") or "") or None,
                doc.get("hold") is True,
            )
        )

    def _on_redelivery(self, doc: dict[str, Any], delivery_id: str) -> Response:
        if delivery_id not in self.deliveries:
            return _json(404, {"error": "unknown_delivery"})
        return self._sending(lambda: self.redeliver(delivery_id))

    def _sending(self, send: Callable[[], Delivery]) -> Response:
        try:
            return _json(200, send().summary())
        except ValueError as exc:
            return _json(400, {"error": "invalid_request", "message": str(exc)})
        except requests.RequestException as exc:
            return _json(502, {"error": "webhook_unreachable", "message": type(exc).__name__})

    def _on_faults(self, doc: dict[str, Any]) -> Response:
        endpoint = str(doc.get("endpoint", ""))
        if endpoint.startswith("business."):
            return _json(*self.business.fault_control(endpoint.removeprefix("business."), doc))
        try:
            if endpoint not in ENDPOINTS:
                raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}")
            times = int(doc.get("times", 1))
            if doc.get("timeout"):
                self.state.timeout_next(endpoint, times)
            else:
                self.state.fail_next(endpoint, int(doc.get("status", 500)), doc.get("body"), times)
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": "invalid_request", "message": str(exc)})
        return _json(200, {"endpoint": endpoint, "pending": len(self.state.faults[endpoint])})
