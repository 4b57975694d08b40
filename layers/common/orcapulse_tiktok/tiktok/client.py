"""The TikTok Open API client: ``requests`` sessions kept per container, a timeout on every call,
retries with backoff for idempotent calls (urllib3's ``Retry`` on the session's adapter), and
TikTok's error envelopes turned into typed errors that carry TikTok's ``log_id``. No token ever
appears in an error message or a ``repr``."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.observability import tracer
from orcapulse_tiktok.tiktok.credentials import AppCredentials

TIMEOUT = (3.05, 8.0)  # connect, read
RETRY_ATTEMPTS = 3
RETRY_STATUSES = (429, 500, 502, 503, 504)
TRANSIENT_CODES = frozenset(
    {"rate_limit_exceeded", "internal_error", "server_error", "temporarily_unavailable"}
)
DEAD_GRANT_CODES = frozenset({"invalid_grant", "access_token_invalid"})
USER_FIELDS = "open_id,union_id,avatar_url,display_name"


class TikTokError(Exception):
    """A call to TikTok failed. ``code`` is TikTok's error code (or ours for transport faults)."""

    def __init__(
        self, code: str, description: str = "", *, log_id: str | None = None, status: int | None = None
    ):
        self.code = code
        self.description = description[:200]
        self.log_id = log_id
        self.status = status
        super().__init__(f"TikTok error {code} (http {status}, log_id {log_id})")


class TikTokTransientError(TikTokError):
    """Timeout, connection failure, 429 or 5xx: the same call may succeed later."""


class TikTokGrantError(TikTokError):
    """The grant or token is dead (``invalid_grant``, ``access_token_invalid``): the user must reconnect."""


class TikTokRequestError(TikTokError):
    """TikTok refused the request for a reason a retry will not fix."""


class TikTokResponseError(TikTokError):
    """TikTok answered with something that is not its documented shape."""


@dataclass(frozen=True)
class TokenGrant:
    """A token endpoint answer. The token fields are excluded from ``repr`` so they cannot be logged
    by accident."""

    open_id: str
    scopes: tuple[str, ...]
    expires_in: int
    refresh_expires_in: int
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)


@dataclass(frozen=True)
class TikTokProfile:
    open_id: str
    union_id: str | None
    display_name: str | None
    avatar_url: str | None


def _classify(code: str, description: str, log_id: str | None, status: int | None) -> TikTokError:
    if code in DEAD_GRANT_CODES:
        return TikTokGrantError(code, description, log_id=log_id, status=status)
    if code in TRANSIENT_CODES or status == 429 or (status is not None and status >= 500):
        return TikTokTransientError(code, description, log_id=log_id, status=status)
    return TikTokRequestError(code, description, log_id=log_id, status=status)


def _str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) and value else None


def _positive_int(body: dict[str, Any], key: str) -> int | None:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _session(retries: Retry | int) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retries)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class TikTokClient:
    """Calls TikTok's Open API. Idempotent calls (user info, revoke) go through a session whose
    adapter retries timeouts, connection failures, 429 and 5xx with exponential backoff and
    jitter (honouring ``Retry-After``); the token endpoint goes through one that never retries."""

    def __init__(self, api_base_url: str, *, backoff: float = 0.25):
        self.api_base_url = api_base_url.rstrip("/")
        retry = Retry(
            total=RETRY_ATTEMPTS - 1,
            backoff_factor=backoff,
            backoff_jitter=backoff,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # every call sent through this session is idempotent
            raise_on_status=False,  # the last answer is classified like any other
        )
        self._retrying = _session(retry)
        self._once = _session(0)

    # -- transport -------------------------------------------------------------------------------
    def _send(self, method: str, path: str, *, retry: bool, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        session = self._retrying if retry else self._once
        try:
            resp = session.request(method, self.api_base_url + path, timeout=TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            # Timeouts and connection failures (after the adapter's retries), broken streams.
            raise TikTokTransientError(type(exc).__name__) from None
        return resp.status_code, self._json(resp)

    @staticmethod
    def _json(resp: requests.Response) -> dict[str, Any]:
        if not resp.content:
            return {}
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if resp.status_code == 429 or resp.status_code >= 500:
                return {}
            raise TikTokResponseError("malformed_response", status=resp.status_code)
        return body

    # -- OAuth -----------------------------------------------------------------------------------
    def _token(self, creds: AppCredentials, form: dict[str, str]) -> TokenGrant:
        # Never retried: an authorization code is single-use and a refresh token rotates, so a
        # blind second POST could burn the grant.
        status, body = self._send(
            "POST",
            "/v2/oauth/token/",
            retry=False,
            data={"client_key": creds.client_key, "client_secret": creds.client_secret, **form},
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-cache"},
        )
        error = _str(body, "error")
        if error or status >= 400:
            raise _classify(
                error or "http_error", str(body.get("error_description") or ""), _str(body, "log_id"), status
            )
        access, refresh, open_id = (
            _str(body, "access_token"),
            _str(body, "refresh_token"),
            _str(body, "open_id"),
        )
        expires_in, refresh_expires_in = (
            _positive_int(body, "expires_in"),
            _positive_int(body, "refresh_expires_in"),
        )
        scope = body.get("scope")
        if not (
            access and refresh and open_id and expires_in and refresh_expires_in and isinstance(scope, str)
        ):
            raise TikTokResponseError("malformed_token_response", log_id=_str(body, "log_id"), status=status)
        return TokenGrant(
            open_id=open_id,
            scopes=tuple(s.strip() for s in scope.split(",") if s.strip()),
            expires_in=expires_in,
            refresh_expires_in=refresh_expires_in,
            access_token=access,
            refresh_token=refresh,
        )

    def exchange_code(
        self, creds: AppCredentials, *, code: str, redirect_uri: str, code_verifier: str | None
    ) -> TokenGrant:
        """Trade an authorization code for tokens (``grant_type=authorization_code``)."""
        form = {"code": code, "grant_type": "authorization_code", "redirect_uri": redirect_uri}
        if code_verifier:
            form["code_verifier"] = code_verifier
        return self._token(creds, form)

    def refresh(self, creds: AppCredentials, refresh_token: str) -> TokenGrant:
        """Trade a refresh token for a new pair; TikTok rotates: the old refresh token dies."""
        return self._token(creds, {"grant_type": "refresh_token", "refresh_token": refresh_token})

    def revoke(self, creds: AppCredentials, token: str) -> None:
        """Revoke a user access token (disconnects the app from the account at TikTok)."""
        status, body = self._send(
            "POST",
            "/v2/oauth/revoke/",
            retry=True,
            data={"client_key": creds.client_key, "client_secret": creds.client_secret, "token": token},
            headers={"Content-Type": "application/x-www-form-urlencoded", "Cache-Control": "no-cache"},
        )
        error = _str(body, "error")
        if error or status >= 400:
            raise _classify(
                error or "http_error", str(body.get("error_description") or ""), _str(body, "log_id"), status
            )

    # -- Display API -----------------------------------------------------------------------------
    def user_info(self, access_token: str) -> TikTokProfile:
        """``GET /v2/user/info/``: the profile fields the integration shows."""
        status, body = self._send(
            "GET",
            "/v2/user/info/",
            retry=True,
            params={"fields": USER_FIELDS},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        err = body.get("error")
        err = err if isinstance(err, dict) else {}
        code = err.get("code") if isinstance(err.get("code"), str) else None
        log_id = err.get("log_id") if isinstance(err.get("log_id"), str) else None
        if code != "ok" or status >= 400:
            raise _classify(code or "http_error", str(err.get("message") or ""), log_id, status)
        data = body.get("data")
        user = data.get("user") if isinstance(data, dict) else None
        if not isinstance(user, dict) or not _str(user, "open_id"):
            raise TikTokResponseError("malformed_user_info", log_id=log_id, status=status)
        return TikTokProfile(
            open_id=str(user["open_id"]),
            union_id=_str(user, "union_id"),
            display_name=_str(user, "display_name"),
            avatar_url=_str(user, "avatar_url"),
        )


@lru_cache(maxsize=4)
def _client_for(api_base_url: str) -> TikTokClient:
    # Traced from here rather than in observability.py, so functions that never call TikTok
    # do not import requests at cold start (patching is idempotent).
    tracer.patch(("requests",))
    return TikTokClient(api_base_url)


def tiktok_client() -> TikTokClient:
    """The container's client for ``TIKTOK_API_BASE_URL``."""
    return _client_for(get_settings().api_base_url)


def reset_client() -> None:
    _client_for.cache_clear()
