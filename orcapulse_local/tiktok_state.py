"""A stateful model of the TikTok endpoints this product uses, shaped exactly as TikTok documents
them: Login Kit authorize, ``/v2/oauth/token/`` (authorization_code with hex-S256 PKCE, and
refresh_token with rotation: a used refresh token is dead), ``/v2/user/info/`` and
``/v2/oauth/revoke/``.

The test suite drives it through ``responses``; the local TikTok emulator serves it over HTTP.
Faults can be injected per endpoint to exercise retries and failure paths."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

Reply = tuple[int, dict[str, Any]]
ENDPOINTS = ("token", "user_info", "revoke")


def log_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8).upper()


@dataclass
class Account:
    open_id: str
    union_id: str
    display_name: str
    avatar_url: str


@dataclass
class Fault:
    status: int
    body: dict[str, Any] | None = None
    timeout: bool = False
    # The request is carried out, then its answer never arrives (a read timeout after the write).
    lost: bool = False


@dataclass
class TikTokState:
    client_key: str = "awlocalclientkey"
    client_secret: str = field(default_factory=lambda: "cs_" + secrets.token_hex(16))
    expires_in: int = 86400
    refresh_expires_in: int = 31536000
    accounts: dict[str, Account] = field(default_factory=dict)
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDPOINTS, 0))
    revoked: list[str] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=lambda: {e: [] for e in ENDPOINTS})
    issued: list[str] = field(default_factory=list)  # every code and token handed out (leak checks)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _seq: Any = field(default_factory=itertools.count)

    # -- set-up -----------------------------------------------------------------------------------
    def add_account(self, open_id: str | None = None, display_name: str = "Orca Fan") -> Account:
        n = next(self._seq)
        open_id = open_id or f"-000{n}OpenId{secrets.token_hex(6)}"
        account = Account(
            open_id=open_id,
            union_id=f"union-{secrets.token_hex(6)}",
            display_name=display_name,
            avatar_url=f"https://p16-sign.tiktokcdn-us.com/avatar/{secrets.token_hex(4)}.jpeg",
        )
        self.accounts[open_id] = account
        return account

    def fail_next(
        self, endpoint: str, status: int = 500, body: dict[str, Any] | None = None, times: int = 1
    ) -> None:
        self.faults[endpoint].extend(Fault(status, body) for _ in range(times))

    def timeout_next(self, endpoint: str, times: int = 1) -> None:
        self.faults[endpoint].extend(Fault(0, timeout=True) for _ in range(times))

    def take_fault(self, endpoint: str) -> Fault | None:
        with self.lock:
            self.calls[endpoint] += 1
            return self.faults[endpoint].pop(0) if self.faults[endpoint] else None

    # -- Login Kit ---------------------------------------------------------------------------------
    def authorize(
        self,
        *,
        client_key: str,
        redirect_uri: str,
        scope: str,
        code_challenge: str | None,
        open_id: str,
        granted_scopes: str | None = None,
    ) -> str:
        """The user approved: issue a single-use authorization code."""
        if client_key != self.client_key:
            raise ValueError("unknown client_key")
        if open_id not in self.accounts:
            self.add_account(open_id)
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "open_id": open_id,
                "scopes": granted_scopes if granted_scopes is not None else scope,
                "redirect_uri": redirect_uri,
                "code_challenge": code_challenge,
                "expires_at": time.time() + 300,
            }
            self.issued.append(code)
        return code

    def _error(self, status: int, error: str, description: str) -> Reply:
        return status, {"error": error, "error_description": description, "log_id": log_id()}

    def _issue(self, open_id: str, scopes: str) -> dict[str, Any]:
        access = "act." + secrets.token_urlsafe(32)
        refresh = "rft." + secrets.token_urlsafe(32)
        now = time.time()
        self.access_tokens[access] = {
            "open_id": open_id,
            "scopes": scopes,
            "expires_at": now + self.expires_in,
            "refresh": refresh,
            "revoked": False,
        }
        self.refresh_tokens[refresh] = {
            "open_id": open_id,
            "scopes": scopes,
            "expires_at": now + self.refresh_expires_in,
            "dead": False,
        }
        self.issued.extend([access, refresh])
        return {
            "access_token": access,
            "expires_in": self.expires_in,
            "open_id": open_id,
            "refresh_expires_in": self.refresh_expires_in,
            "refresh_token": refresh,
            "scope": scopes,
            "token_type": "Bearer",  # the scheme TikTok names, not a token  # nosec B105
        }

    def _client_ok(self, form: dict[str, str]) -> bool:
        return form.get("client_key") == self.client_key and hmac.compare_digest(
            form.get("client_secret", ""), self.client_secret
        )

    def token(self, form: dict[str, str]) -> Reply:
        """``POST /v2/oauth/token/`` (form-encoded)."""
        with self.lock:
            if not self._client_ok(form):
                return self._error(401, "invalid_client", "Client key or secret is invalid.")
            grant_type = form.get("grant_type")
            if grant_type == "authorization_code":
                grant = self.codes.pop(form.get("code", ""), None)
                if grant is None or grant["expires_at"] < time.time():
                    return self._error(400, "invalid_grant", "Authorization code is expired.")
                if form.get("redirect_uri") != grant["redirect_uri"]:
                    return self._error(400, "invalid_request", "Redirect URI does not match.")
                if grant["code_challenge"]:
                    verifier = form.get("code_verifier", "")
                    if hashlib.sha256(verifier.encode()).hexdigest() != grant["code_challenge"]:
                        return self._error(400, "invalid_grant", "Code verifier is invalid.")
                return 200, self._issue(grant["open_id"], grant["scopes"])
            if grant_type == "refresh_token":
                record = self.refresh_tokens.get(form.get("refresh_token", ""))
                if record is None or record["dead"] or record["expires_at"] < time.time():
                    return self._error(400, "invalid_grant", "Refresh token is invalid or expired.")
                record["dead"] = True  # rotation: the used refresh token stops working
                return 200, self._issue(record["open_id"], record["scopes"])
            return self._error(400, "invalid_request", "Unsupported grant_type.")

    def user_info(self, authorization: str | None, fields: str | None) -> Reply:
        """``GET /v2/user/info/?fields=...`` with ``Authorization: Bearer``."""
        with self.lock:
            token = (authorization or "").removeprefix("Bearer ").strip()
            record = self.access_tokens.get(token)
            if record is None or record["revoked"] or record["expires_at"] < time.time():
                return 401, {
                    "data": {},
                    "error": {
                        "code": "access_token_invalid",
                        "message": "The access token is invalid or not found in the request.",
                        "log_id": log_id(),
                    },
                }
            account = self.accounts[record["open_id"]]
            wanted = {f.strip() for f in (fields or "").split(",") if f.strip()}
            user = {k: v for k, v in account.__dict__.items() if k in wanted}
            return 200, {"data": {"user": user}, "error": {"code": "ok", "message": "", "log_id": log_id()}}

    def revoke(self, form: dict[str, str]) -> Reply:
        """``POST /v2/oauth/revoke/``: the token and its refresh token stop working."""
        with self.lock:
            if not self._client_ok(form):
                return self._error(401, "invalid_client", "Client key or secret is invalid.")
            record = self.access_tokens.get(form.get("token", ""))
            if record is None:
                return self._error(400, "invalid_request", "Token is invalid.")
            record["revoked"] = True
            refresh = self.refresh_tokens.get(record["refresh"])
            if refresh:
                refresh["dead"] = True
            self.revoked.append(record["open_id"])
            return 200, {}

    # -- webhooks ----------------------------------------------------------------------------------
    def sign(self, body: bytes, timestamp: int | None = None) -> str:
        """The ``TikTok-Signature`` header value for ``body``."""
        ts = int(time.time()) if timestamp is None else timestamp
        mac = hmac.new(self.client_secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={ts},s={mac}"

    def envelope(
        self, event: str, open_id: str, content: dict[str, Any], create_time: int | None = None
    ) -> bytes:
        """A webhook body as TikTok sends it: ``content`` is a JSON *string*."""
        return json.dumps(
            {
                "client_key": self.client_key,
                "event": event,
                "create_time": int(time.time()) if create_time is None else create_time,
                "user_openid": open_id,
                "content": json.dumps(content),
            }
        ).encode()
