"""A stateful model of the TikTok API for Business endpoints this product uses, answering as the
docs show — HTTP 200 with ``{"code", "message", "request_id", "data"}``, a non-zero ``code`` for
every error (docs/business-accounts.md lists the source of each shape):

- ``tt_user/oauth2/token/``, ``refresh_token/`` (rotation: a used refresh token is dead), ``revoke/``;
- ``business/get/``, ``business/video/list/``, ``business/comment/list/`` (newest first, offset
  cursor, ``HIDDEN``/``PUBLIC`` status), ``business/message/conversation/list/`` and
  ``business/message/content/list/``;
- ``business/webhook/update/`` and ``business/webhook/list/`` (per app).

The test suite drives it through ``responses`` (tests/support/business_fake.py); the local TikTok
emulator serves it over HTTP (``business_emulator``). Every token handed out is listed in ``issued``
(the log-leak checks read it)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

from orcapulse_local.fault_queue import FaultQueue

PREFIX = "/open_api/v1.3/"
ENDPOINTS = {
    "token": ("POST", "tt_user/oauth2/token/"),
    "refresh": ("POST", "tt_user/oauth2/refresh_token/"),
    "revoke": ("POST", "tt_user/oauth2/revoke/"),
    "profile": ("GET", "business/get/"),
    "videos": ("GET", "business/video/list/"),
    "comments": ("GET", "business/comment/list/"),
    "conversations": ("GET", "business/message/conversation/list/"),
    "messages": ("GET", "business/message/content/list/"),
    "webhook_update": ("POST", "business/webhook/update/"),
    "webhook_list": ("GET", "business/webhook/list/"),
}
BUSINESS_SCOPES = (
    "user.info.basic,user.info.username,user.account.type,message.list.read,message.list.send,"
    "message.list.manage,comment.list,comment.list.manage"
)
CONVERSATION_TYPES = ("STRANGER", "SINGLE")
Answer = dict[str, Any]


def listed_message(
    business_id: str, content: dict[str, Any], *, username: str, display_name: str
) -> dict[str, Any]:
    """How ``business/message/content/list/`` shows the message an ``im_receive_msg`` delivery with
    ``content`` announces to the account ``business_id`` (``username``, ``display_name``): the
    webhook's ``from`` is the list's ``sender``, its ``from_user`` the person's participant object."""
    text = content.get("text")
    return {
        "sender": content.get("from"),
        "recipient": username,
        "conversation_id": content["conversation_id"],
        "message_id": str(content["message_id"]),
        "timestamp": content["timestamp"],
        "message_type": str(content.get("type") or "text").upper(),
        **({"text": text} if isinstance(text, dict) else {}),
        "from_user": {
            "role": "PERSONAL_ACCOUNT",
            "id": (content.get("from_user") or {}).get("id"),
            "display_name": content.get("from"),
        },
        "to_user": {"role": "BUSINESS_ACCOUNT", "id": business_id, "display_name": display_name},
    }


def request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(12).upper()


@dataclass
class BusinessState(FaultQueue):
    DEFAULT_FAULT = (40100, "Too many requests")
    app_id: str = "7300000000000000900"
    secret: str = field(default_factory=lambda: "bs_" + secrets.token_hex(16))
    expires_in: int = 86400
    refresh_expires_in: int = 31536000
    issued: list[str] = field(default_factory=list)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    videos: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    comments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # video_id → newest first
    # business_id → conversations, newest first: {"conversation_id", "up_time", "type", "messages"}
    conversations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    webhooks: dict[str, str] = field(default_factory=dict)  # event_type → callback_url
    revoked: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    # endpoint → answers to give instead of the real one: a body dict (HTTP 200), or "timeout"
    faults: dict[str, list[Any]] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.issued.append(self.secret)

    # -- set-up -----------------------------------------------------------------------------------
    def add_account(
        self, business_id: str, *, username: str = "orca_shop", display_name: str = "Orca Shop"
    ) -> None:
        self.accounts[business_id] = {"username": username, "display_name": display_name, "profile_image": ""}
        self.videos.setdefault(business_id, [])
        self.conversations.setdefault(business_id, [])

    def add_video(self, business_id: str, item_id: str, create_time: int) -> None:
        self.videos[business_id].insert(0, {"item_id": item_id, "create_time": create_time})
        self.comments.setdefault(item_id, [])

    def add_comment(
        self, video_id: str, comment_id: str, text: str, create_time: int, **extra: Any
    ) -> dict[str, Any]:
        """A comment as ``business/comment/list/`` shows it; ``extra`` overrides any field
        (``unique_identifier``/``username`` for another commenter, ``status="HIDDEN"``)."""
        comment = {
            "comment_id": comment_id,
            "video_id": video_id,
            "user_id": "ce9b7be629b0447af777a0ad945783f61b7f790982b49fbda04a23b4722eaffe",
            "unique_identifier": "orca_fan_88",
            "create_time": create_time,
            "text": text,
            "likes": 0,
            "replies": 0,
            "owner": False,
            "liked": False,
            "pinned": False,
            "status": "PUBLIC",
            "username": "orca_fan_88",
            "display_name": "Orca Fan",
            **extra,
        }
        with self.lock:
            self.comments[video_id].insert(0, comment)
        return comment

    def add_message(
        self,
        business_id: str,
        conversation_id: str,
        message: dict[str, Any],
        conversation_type: str = "STRANGER",
    ) -> None:
        """A message as ``business/message/content/list/`` shows it, in its conversation (which
        becomes the newest)."""
        with self.lock:
            listed = self.conversations.setdefault(business_id, [])
            found = next((c for c in listed if c["conversation_id"] == conversation_id), None)
            if found is None:
                found = {"conversation_id": conversation_id, "type": conversation_type, "messages": []}
            else:
                listed.remove(found)
            found["messages"].insert(0, message)
            found["up_time"] = int(message["timestamp"])
            listed.insert(0, found)

    def fault_answer(self, fault: dict[str, Any]) -> Answer:
        return {**fault, "request_id": request_id(), "data": {}}

    def authorize(self, business_id: str, *, scopes: str = BUSINESS_SCOPES, redirect_uri: str) -> str:
        if business_id not in self.accounts:
            self.add_account(business_id)
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {"open_id": business_id, "scope": scopes, "redirect_uri": redirect_uri}
            self.issued.append(code)
        return code

    def sign(self, body: bytes, timestamp: int | None = None) -> str:
        """The ``TikTok-Signature`` header value for ``body``, signed with the Business app's secret."""
        ts = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(self.secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={ts},s={mac}"

    def envelope(
        self, event: str, open_id: str, content: dict[str, Any], create_time: int | None = None
    ) -> bytes:
        """A delivery as TikTok sends it for a business account: the app_id as ``client_key``."""
        return json.dumps(
            {
                "client_key": self.app_id,
                "event": event,
                "create_time": int(time.time()) if create_time is None else create_time,
                "user_openid": open_id,
                "content": json.dumps(content),
            }
        ).encode()

    def live_tokens(self, business_id: str) -> int:
        now = time.time()
        with self.lock:
            return sum(
                1
                for t in self.access_tokens.values()
                if t["open_id"] == business_id and not t.get("revoked") and t["expires_at"] > now
            )

    # -- answers ----------------------------------------------------------------------------------
    def _ok(self, data: dict[str, Any]) -> Answer:
        return {"code": 0, "message": "OK", "request_id": request_id(), "data": data}

    def _error(self, code: int, message: str) -> Answer:
        return {"code": code, "message": message, "request_id": request_id(), "data": {}}

    def _issue(self, open_id: str, scope: str) -> dict[str, Any]:
        access, refresh = "bat." + secrets.token_urlsafe(32), "brt." + secrets.token_urlsafe(32)
        self.access_tokens[access] = {"open_id": open_id, "expires_at": time.time() + self.expires_in}
        self.refresh_tokens[refresh] = {"open_id": open_id, "scope": scope, "dead": False}
        self.issued.extend([access, refresh])
        return {
            "open_id": open_id,
            "scope": scope,
            "access_token": access,
            "expires_in": self.expires_in,
            "refresh_token": refresh,
            "refresh_token_expires_in": self.refresh_expires_in,
            "token_type": "Bearer",  # the token's type, as TikTok names it  # nosec B105
        }

    def _app_ok(self, client_id: Any, client_secret: Any) -> bool:
        return client_id == self.app_id and hmac.compare_digest(str(client_secret or ""), self.secret)

    def _token_owner(self, token: str | None) -> str | None:
        entry = self.access_tokens.get(token or "")
        if entry is None or entry.get("revoked") or entry["expires_at"] < time.time():
            return None
        return str(entry["open_id"])

    def answer(self, endpoint: str, query: dict[str, str], body: dict[str, Any], token: str | None) -> Answer:
        """TikTok's answer to a call of ``endpoint`` (a key of ``ENDPOINTS``)."""
        with self.lock:
            try:
                return self._answer(endpoint, query, body, token)
            except (KeyError, TypeError, ValueError):
                return self._error(40002, "Invalid parameter")

    def _answer(
        self, endpoint: str, query: dict[str, str], body: dict[str, Any], token: str | None
    ) -> Answer:
        if endpoint in ("token", "refresh", "revoke"):
            return self._oauth(endpoint, body)
        if endpoint in ("webhook_update", "webhook_list"):
            app_id = body.get("app_id", query.get("app_id"))
            if not self._app_ok(app_id, body.get("secret", query.get("secret"))):
                return self._error(40001, "Invalid app credentials")
            event_type = cast(str, body.get("event_type", query.get("event_type")))
            if endpoint == "webhook_update":
                self.webhooks[event_type] = body["callback_url"]
            url = self.webhooks.get(event_type)
            return self._ok(
                {"app_id": self.app_id, "event_type": event_type, **({"callback_url": url} if url else {})}
            )
        owner = self._token_owner(token)
        if owner is None:
            return self._error(40105, "The access token is invalid")
        if query.get("business_id") != owner:
            return self._error(40001, "No permission for this business_id")
        if endpoint == "profile":
            return self._ok(dict(self.accounts[owner]))
        if endpoint == "videos":
            videos = self.videos[owner][: int(query.get("max_count", 10))]
            return self._ok({"videos": videos, "cursor": 0, "has_more": False})
        if endpoint == "conversations":
            return self._conversations(owner, query)
        if endpoint == "messages":
            found = [c for c in self.conversations[owner] if c["conversation_id"] == query["conversation_id"]]
            if not found:
                return self._error(40002, "Param conversation_id is invalid.")
            return self._ok({"messages": list(found[0]["messages"]), "participants": []})
        # comments, newest first, cursor = offset; status ALL (the default) includes hidden ones
        items = self.comments.get(query.get("video_id", ""), [])
        if query.get("status") == "PUBLIC":
            items = [c for c in items if c.get("status") != "HIDDEN"]
        start, size = int(query.get("cursor", 0)), int(query.get("max_count", 20))
        page = items[start : start + size]
        more = start + size < len(items)
        return self._ok({"comments": page, "cursor": start + len(page), "has_more": more})

    def _conversations(self, owner: str, query: dict[str, str]) -> Answer:
        kind = query.get("conversation_type")
        if kind not in CONVERSATION_TYPES:
            return self._error(40002, "Param conversation_type is invalid.")
        items = [c for c in self.conversations[owner] if c["type"] == kind]
        start, size = int(query.get("cursor", 0)), int(query.get("limit", 100))
        page = [
            {"conversation_id": c["conversation_id"], "up_time": c["up_time"]}
            for c in items[start : start + size]
        ]
        return self._ok(
            {"conversations": page, "cursor": start + len(page), "has_more": start + size < len(items)}
        )

    def _oauth(self, endpoint: str, body: dict[str, Any]) -> Answer:
        if not self._app_ok(body.get("client_id"), body.get("client_secret")):
            return self._error(40001, "Invalid app credentials")
        if endpoint == "token":
            grant = self.codes.pop(body.get("auth_code") or "", None)
            if body.get("grant_type") != "authorization_code" or grant is None:
                return self._error(40002, "auth_code is invalid or expired")
            if grant["redirect_uri"] != body.get("redirect_uri"):
                return self._error(40002, "redirect_uri mismatch")
            return self._ok(self._issue(grant["open_id"], grant["scope"]))
        if endpoint == "refresh":
            entry = self.refresh_tokens.get(body.get("refresh_token") or "")
            if body.get("grant_type") != "refresh_token" or entry is None or entry["dead"]:
                return self._error(40105, "The refresh token is invalid")
            entry["dead"] = True  # rotation
            return self._ok(self._issue(entry["open_id"], entry["scope"]))
        entry = self.access_tokens.get(body.get("access_token") or "")
        if entry is not None:
            entry["revoked"] = True
            self.revoked.append(str(body.get("access_token")))
        return self._ok({})
