"""The Marketing API of lead forms on localhost (DESIGN §10), beside the TikTok emulator and on its
host: the same stateful model the tests use (:class:`AdsState`) served over HTTP.

TikTok's side:
- ``GET /portal/auth?app_id&state&redirect_uri`` — the advertiser consent page (HTML: the
  advertisers to authorise, Approve and Deny); its form POST redirects to ``redirect_uri`` with
  ``auth_code`` and ``state`` (Deny: ``state`` only, no code);
- ``/open_api/v1.3/`` ``oauth2/access_token/``, ``oauth2/advertiser/get/``, ``oauth2/revoke_token/``,
  ``subscription/subscribe/``, ``subscription/get/``, ``subscription/unsubscribe/``, ``page/get/``,
  ``page/lead/task/``, ``page/lead/task/download/`` (CSV), answering as the docs show.

Local controls (JSON only): ``GET /local/ads/state`` (advertisers, forms, subscriptions, call
counts — never a token or a person's data), ``POST /local/ads/leads`` ("submit a test lead": a
person fills in a form; the signed delivery goes to the leads webhook of the advertiser's
subscription, or is kept undelivered with ``"drop": true`` for the catch-up to find) and
``POST /local/ads/faults``.

Mounted on the TikTok emulator by one line there (``mount``)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import jinja2
import requests
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from orcapulse_local import config
from orcapulse_local.ads_state import ENDPOINTS, AdsState

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

CONSENT_PATH = "/portal/auth"
API_PREFIX = "/open_api/v1.3/"
# The local Business app (config.py): the Marketing API is the same app as the Business API.
LOCAL_APP_ID = config.LOCAL_BUSINESS_APP_ID
SEED_ADVERTISERS = (("7300000000000000555", "Orca Plush Ads"),)
API_PATHS = frozenset(API_PREFIX + path for _, path in ENDPOINTS.values())
SAMPLE_ANSWERS = {"name": "Ana Lima", "email": "ana.lima@example.com", "phone_number": "+351912345678"}

_ROUTES = Map(
    [
        Rule(CONSENT_PATH, endpoint="consent", methods=["GET"]),
        Rule(CONSENT_PATH, endpoint="decision", methods=["POST"]),
        *(
            Rule(API_PREFIX + path, endpoint=f"api:{name}", methods=[method])
            for name, (method, path) in ENDPOINTS.items()
        ),
        Rule("/local/ads/state", endpoint="snapshot", methods=["GET"]),
        Rule("/local/ads/leads", endpoint="leads", methods=["POST"]),
        Rule("/local/ads/faults", endpoint="faults", methods=["POST"]),
    ]
)
_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TikTok for Business — authorise</title>
<style>body{font-family:system-ui,sans-serif;max-width:30rem;margin:3rem auto;}button{padding:.6rem 1.2rem}</style>
</head><body><h1>Authorise <strong>OrcaPulse (local)</strong> for your ad accounts</h1>
<p>TikTok emulator on this machine — no real advertiser is involved.</p>
<form method="post">
{% for key, value in query.items() %}<input type="hidden" name="{{ key }}" value="{{ value }}">{% endfor %}
{% for id, name in advertisers %}<label><input type="checkbox" name="advertiser_id" value="{{ id }}" checked>
 {{ name }} ({{ id }})</label><br>{% endfor %}
<p><button name="decision" value="deny">Cancel</button> <button name="decision" value="approve">Confirm</button></p>
</form></body></html>"""
)


def local_ads_state() -> AdsState:
    """The emulator's model: the local Business app and a seed advertiser with one form."""
    state = AdsState(app_id=LOCAL_APP_ID, secret=config.LOCAL_BUSINESS_APP_SECRET)
    for advertiser_id, name in SEED_ADVERTISERS:
        state.add_advertiser(advertiser_id, name)
        state.add_form(advertiser_id)
    return state


def _json(status: int, document: Any) -> Response:
    return Response(
        json.dumps(document), status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    )


class AdsEmulator:
    """The Marketing API's endpoints and the local controls, as a WSGI application."""

    def __init__(self, state: AdsState | None = None, *, redirect_uris: Iterable[str] = ()) -> None:
        self.state = state or local_ads_state()
        self.redirect_uris = set(redirect_uris)
        self.dropped: list[str] = []  # lead ids whose delivery was dropped on request

    def handles(self, path: str) -> bool:
        """Whether ``path`` is the Marketing API's (the Business API's paths stay with its emulator)."""
        return path == CONSENT_PATH or path in API_PATHS or path.startswith("/local/ads/")

    def wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, _ = _ROUTES.bind_to_environ(environ).match()
        except HTTPException:
            return _json(404, {"error": "not_found"})(environ, start_response)  # type: ignore[no-any-return]
        if endpoint.startswith("api:"):
            response = self._api(endpoint.removeprefix("api:"), request)
        else:
            response = getattr(self, f"_on_{endpoint}")(request)
        return response(environ, start_response)  # type: ignore[no-any-return]

    # -- TikTok's side -----------------------------------------------------------------------------
    def _api(self, endpoint: str, request: Request) -> Response:
        fault = self.state.take_fault(endpoint)
        if fault is not None and fault != "timeout":
            return _json(200, {**fault, "request_id": secrets.token_hex(12), "data": {}})
        body = request.get_json(silent=True) if request.get_data() else {}
        status, headers, content = self.state.answer(
            endpoint,
            request.args.to_dict(),
            body if isinstance(body, dict) else {},
            request.headers.get("Access-Token"),
        )
        return Response(content, status, list(headers.items()))

    def _problem(self, params: dict[str, str]) -> str | None:
        if params.get("app_id") != self.state.app_id:
            return "This app (app_id) is not known to TikTok for Business."
        redirect = params.get("redirect_uri", "")
        if not redirect or (self.redirect_uris and redirect not in self.redirect_uris):
            return "redirect_uri is not registered for this app."
        return None

    def _on_consent(self, request: Request) -> Response:
        query = {k: v for k, v in request.args.items() if k in ("app_id", "state", "redirect_uri")}
        problem = self._problem(query)
        if problem:
            return Response(problem, 400, [("Content-Type", "text/plain; charset=utf-8")])
        page = _PAGE.render(query=query, advertisers=sorted(self.state.advertisers.items()))
        return Response(
            page, 200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")]
        )

    def _on_decision(self, request: Request) -> Response:
        form = request.form
        params = {k: form.get(k, "") for k in ("app_id", "state", "redirect_uri")}
        problem = self._problem(params)
        if problem:
            return Response(problem, 400, [("Content-Type", "text/plain; charset=utf-8")])
        answer = {"state": params["state"]}
        if form.get("decision") == "approve":
            chosen = [a for a in form.getlist("advertiser_id") if a in self.state.advertisers]
            answer = {"auth_code": self.state.authorize(chosen or list(self.state.advertisers)), **answer}
        redirect = params["redirect_uri"]
        sep = "&" if urlsplit(redirect).query else "?"
        return Response(
            status=302,
            headers={"Location": f"{redirect}{sep}{urlencode(answer)}", "Cache-Control": "no-store"},
        )

    # -- local controls ----------------------------------------------------------------------------
    def _document(self, request: Request) -> dict[str, Any] | Response:
        if request.mimetype != "application/json":
            return _json(415, {"error": "json_required"})
        doc = request.get_json(silent=True) if request.get_data() else {}
        return doc if isinstance(doc, dict) else _json(400, {"error": "invalid_json"})

    def snapshot(self) -> dict[str, Any]:
        """What the emulator knows, without a token, a code or a person's data."""
        with self.state.lock:
            return {
                "app_id": self.state.app_id,
                "advertisers": [
                    {"advertiser_id": a, "name": n, "forms": self.state.forms.get(a, [])}
                    for a, n in sorted(self.state.advertisers.items())
                ],
                "subscriptions": [
                    {
                        "subscription_id": sid,
                        "advertiser_id": s["subscription_detail"]["advertiser_id"],
                        "callback_url": s["callback_url"],
                    }
                    for sid, s in self.state.subscriptions.items()
                ],
                "leads": sum(len(v) for v in self.state.leads.values()),
                "dropped": list(self.dropped),
                "calls": dict(self.state.calls),
            }

    def _on_snapshot(self, request: Request) -> Response:
        return _json(200, self.snapshot())

    def submit_lead(
        self, advertiser_id: str | None = None, answers: dict[str, str] | None = None, *, drop: bool = False
    ) -> dict[str, Any]:
        """A person submits the advertiser's form; TikTok delivers it to every subscription of the
        advertiser (signed), unless ``drop`` (the delivery is lost: the catch-up must find it)."""
        advertiser_id = advertiser_id or next(iter(self.state.advertisers))
        if advertiser_id not in self.state.advertisers:
            raise ValueError("unknown advertiser")
        forms = self.state.forms.get(advertiser_id) or [self.state.add_form(advertiser_id)]
        entry = self.state.submit_lead(advertiser_id, forms[0], dict(answers or SAMPLE_ANSWERS))
        lead_id = str(entry["id"])
        if drop:
            self.dropped.append(lead_id)
            return {"lead_id": lead_id, "delivered": []}
        body = self.state.delivery([entry])
        targets = sorted(
            {
                s["callback_url"]
                for s in self.state.subscriptions.values()
                if s["subscription_detail"]["advertiser_id"] == advertiser_id and s["callback_url"]
            }
        )
        delivered = []
        for url in targets:
            resp = requests.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "X-Open-Signature": self.state.signature(body)},
                timeout=30,
            )
            delivered.append({"status": resp.status_code, "answer": resp.json() if resp.content else None})
        return {"lead_id": lead_id, "delivered": delivered}

    def _on_leads(self, request: Request) -> Response:
        doc = self._document(request)
        if isinstance(doc, Response):
            return doc
        answers = doc.get("answers")
        if answers is not None and not (
            isinstance(answers, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items())
        ):
            return _json(400, {"error": "invalid_request", "message": "answers must map field names to text"})
        try:
            result = self.submit_lead(
                str(doc.get("advertiser_id") or "") or None, answers, drop=bool(doc.get("drop"))
            )
        except ValueError as exc:
            return _json(400, {"error": "invalid_request", "message": str(exc)})
        except requests.RequestException as exc:
            return _json(502, {"error": "webhook_unreachable", "message": type(exc).__name__})
        return _json(200, result)

    def _on_faults(self, request: Request) -> Response:
        doc = self._document(request)
        if isinstance(doc, Response):
            return doc
        endpoint = str(doc.get("endpoint", ""))
        if endpoint not in ENDPOINTS:
            return _json(
                400,
                {"error": "invalid_request", "message": f"endpoint must be one of {', '.join(ENDPOINTS)}"},
            )
        self.state.fail_next(
            endpoint, int(doc.get("code", 50000)), str(doc.get("message") or "Internal error")
        )
        return _json(200, {"endpoint": endpoint, "pending": len(self.state.faults[endpoint])})


def mount(host: Any, app: WSGIApplication) -> WSGIApplication:
    """``app`` with the Marketing API beside it: requests for the ads paths go to the
    ``AdsEmulator`` kept on ``host`` as ``host.ads`` (created on first use), the rest to ``app``."""
    if getattr(host, "ads", None) is None:
        host.ads = AdsEmulator()

    def dispatch(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        ads: AdsEmulator = host.ads
        if ads.handles(environ.get("PATH_INFO", "")):
            return ads.wsgi(environ, start_response)
        return app(environ, start_response)

    return dispatch


def of(host: Any) -> AdsEmulator:
    """The ``AdsEmulator`` mounted on ``host`` (the TikTok emulator)."""
    ads = getattr(host, "ads", None)
    if not isinstance(ads, AdsEmulator):
        raise ValueError("no Marketing API emulator is mounted here")
    return ads
