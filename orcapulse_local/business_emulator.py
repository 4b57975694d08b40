"""The TikTok API for Business side of the local TikTok emulator (DESIGN §8): the Accounts API under
``/open_api/v1.3/`` served from :class:`BusinessState`, the business half of the consent page
(an authorize request naming the Business app's ``app_id`` as ``client_key`` connects a business
account), and the activity of a business account — a comment or a DM is recorded where TikTok's
lists show it (``business/comment/list/``, ``business/message/content/list/``) and its webhook
content is built exactly as the Login Kit emulator's (``webhook_events``), so a delivery and a
catch-up see one and the same comment or message. A comment can be *held*: listed but never
delivered, as a webhook TikTok dropped."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from orcapulse_local import config
from orcapulse_local.business_state import ENDPOINTS, PREFIX, BusinessState, listed_message
from orcapulse_local.tiktok_state import Account
from orcapulse_local.webhook_events import event_content, person_id

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_ROUTES = Map(
    [Rule(PREFIX + path, endpoint=name, methods=[method]) for name, (method, path) in ENDPOINTS.items()]
)
# Which registered webhook (business/webhook/update/ event_type) carries each kind of delivery.
EVENT_TYPES = {"comment": "COMMENT", "dm": "DIRECT_MESSAGE", "high_intent": "DIRECT_MESSAGE"}
FIRST_VIDEO_ID = 7_310_000_000_000_000_000


def local_business_state() -> BusinessState:
    """The local Business app's fixed credentials and its seed business account."""
    state = BusinessState(app_id=config.LOCAL_BUSINESS_APP_ID, secret=config.LOCAL_BUSINESS_APP_SECRET)
    for business_id, username, name in config.SEED_BUSINESS_ACCOUNTS:
        state.add_account(business_id, username=username, display_name=name)
    return state


def _json(document: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(document), status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")]
    )


class BusinessEmulator:
    """The Business API of the emulator; ``held`` counts comments listed but never delivered."""

    def __init__(self, state: BusinessState | None = None):
        self.state = state or local_business_state()
        self.held = 0

    # -- consent -----------------------------------------------------------------------------------
    def is_business(self, client_key: str | None) -> bool:
        return client_key == self.state.app_id

    def accounts(self) -> list[Account]:
        """The business accounts the consent page offers to continue as."""
        with self.state.lock:
            return [
                Account(open_id=bid, union_id="", display_name=a["display_name"], avatar_url="")
                for bid, a in self.state.accounts.items()
            ]

    def approve(self, open_id: str, display_name: str, *, scopes: str, redirect_uri: str) -> tuple[str, str]:
        """The owner approved: the business account (``new`` creates one) and its single-use code."""
        open_id = open_id or next(iter(self.state.accounts), "new")
        if open_id == "new":
            open_id = f"biz-{secrets.token_hex(6)}"
            handle = "".join(ch for ch in display_name.lower() if ch.isalnum())[:20] or "shop"
            self.state.add_account(
                open_id, username=f"{handle}_{secrets.token_hex(2)}", display_name=display_name
            )
        return open_id, self.state.authorize(open_id, scopes=scopes, redirect_uri=redirect_uri)

    # -- activity ----------------------------------------------------------------------------------
    def _video(self, business_id: str) -> str:
        with self.state.lock:
            videos = self.state.videos.setdefault(business_id, [])
            if not videos:
                item_id = str(FIRST_VIDEO_ID + len(self.state.comments))
                self.state.add_video(business_id, item_id, int(time.time()) - 3600)
            return str(videos[0]["item_id"])

    def comment(
        self, business_id: str, text: str, author: str | None, *, hold: bool = False
    ) -> dict[str, Any]:
        """A comment on the account's newest video, listed by ``business/comment/list/``: the
        ``comment.update`` content TikTok delivers for it (``hold``: it is never delivered)."""
        video_id = self._video(business_id)
        content = event_content("comment", business_id, text, author=author)
        content["video_id"] = int(video_id)
        handle = str(content["unique_identifier"])
        self.state.add_comment(
            video_id,
            str(content["comment_id"]),
            text,
            int(content["timestamp"]) // 1000,
            unique_identifier=handle,
            username=handle,
            user_id=person_id(handle),
            display_name=handle,
        )
        self.held += hold
        return content

    def message(self, business_id: str, text: str, author: str | None) -> dict[str, Any]:
        """A DM to the account, listed by ``business/message/content/list/``: the
        ``im_receive_msg`` content TikTok delivers for it."""
        content = event_content("dm", business_id, text, author=author)
        business = self.state.accounts[business_id]
        listed = listed_message(
            business_id, content, username=business["username"], display_name=business["display_name"]
        )
        self.state.add_message(business_id, str(content["conversation_id"]), listed)
        return content

    def fault_control(self, endpoint: str, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``/local/faults`` for ``business.<endpoint>``: its next ``times`` calls answer TikTok's
        error ``code`` (HTTP 200; 40100, a rate limit, by default) or, with ``timeout``, never."""
        if endpoint not in ENDPOINTS:
            names = ", ".join(f"business.{e}" for e in ENDPOINTS)
            return 400, {"error": "invalid_request", "message": f"endpoint must be one of {names}"}
        try:
            times, code = int(doc.get("times", 1)), int(doc.get("code", 40100))
        except (TypeError, ValueError) as exc:
            return 400, {"error": "invalid_request", "message": str(exc)}
        if doc.get("timeout"):
            self.state.timeout_next(endpoint, times)
        else:
            self.state.fail_next(endpoint, code, str(doc.get("message") or "Injected by the emulator"), times)
        return 200, {"endpoint": f"business.{endpoint}", "pending": len(self.state.faults[endpoint])}

    def callback_url(self, kind: str) -> str | None:
        """Where TikTok delivers ``kind`` for the app: what ``business/webhook/update/`` registered."""
        with self.state.lock:
            return self.state.webhooks.get(EVENT_TYPES.get(kind, ""))

    def snapshot(self) -> dict[str, Any]:
        """What the Business side knows, without a single token or code."""
        with self.state.lock:
            accounts = [
                {
                    "business_id": bid,
                    "username": a["username"],
                    "display_name": a["display_name"],
                    "live_access_tokens": self.state.live_tokens(bid),
                    "comments": sum(
                        len(self.state.comments.get(v["item_id"], [])) for v in self.state.videos[bid]
                    ),
                    "conversations": len(self.state.conversations.get(bid, [])),
                }
                for bid, a in self.state.accounts.items()
            ]
            return {
                "app_id": self.state.app_id,
                "accounts": accounts,
                "webhooks": dict(self.state.webhooks),
                "calls": dict(self.state.calls),
                "revocations": len(self.state.revoked),
                "held_comments": self.held,
            }

    # -- HTTP --------------------------------------------------------------------------------------
    def wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """``/open_api/v1.3/...`` as TikTok answers it: HTTP 200 and a non-zero ``code`` on errors."""
        request = Request(environ)
        try:
            endpoint, _ = _ROUTES.bind_to_environ(environ).match()
        except HTTPException:
            response = _json({"code": 40002, "message": "Not found", "request_id": "", "data": {}}, 404)
            return response(environ, start_response)  # type: ignore[no-any-return]
        fault = self.state.take_fault(endpoint)
        if fault == "timeout":
            time.sleep(10)  # longer than the product's read timeout
            response = _json({}, 504)
        elif fault is not None:
            response = _json(self.state.fault_answer(fault))
        else:
            body = request.get_json(silent=True) if request.get_data() else {}
            query = dict(parse_qsl(request.query_string.decode()))
            response = _json(
                self.state.answer(
                    endpoint,
                    query,
                    body if isinstance(body, dict) else {},
                    request.headers.get("Access-Token"),
                )
            )
        return response(environ, start_response)  # type: ignore[no-any-return]
