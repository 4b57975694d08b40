"""The TikTok API for Business client (Accounts API, ``/open_api/v1.3/``), beside the Login Kit one.

Every answer is ``{"code", "message", "request_id", "data"}``: ``code`` 0 is success and anything
else is an error, even with HTTP 200. Errors become the Login Kit client's typed errors, so the
token service and the callback tell them apart the same way: rate-limit codes are transient, an
expired or invalid token is a dead grant (``TikTokGrantError``), the rest a refused request.
``request_id`` travels as the error's ``log_id`` (logged as ``tiktok_log_id``). Idempotent calls
are retried: transport faults, 429 and 5xx by the session's urllib3 ``Retry``, the rate-limit
codes TikTok answers with HTTP 200 here, with backoff. Token and refresh calls are never retried.
No token or app secret ever appears in an error message or a ``repr``."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

import requests
from urllib3.util.retry import Retry

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.observability import tracer
from orcapulse_tiktok.tiktok.business_answers import RATE_LIMIT_CODES, envelope
from orcapulse_tiktok.tiktok.business_answers import int_of as _int
from orcapulse_tiktok.tiktok.client import (
    RETRY_ATTEMPTS,
    RETRY_STATUSES,
    TIMEOUT,
    TikTokProfile,
    TikTokResponseError,
    TikTokTransientError,
    TokenGrant,
    _session,
)
from orcapulse_tiktok.tiktok.credentials import AppCredentials

PREFIX = "/open_api/v1.3/"
PROFILE_FIELDS = ["username", "display_name", "profile_image"]
VIDEO_FIELDS = ["item_id", "create_time"]
MAX_COMMENTS_PER_PAGE = 30  # business/comment/list/ max_count
MAX_VIDEOS_PER_PAGE = 20  # business/video/list/ max_count
MESSAGES = "business/message/"  # Business Messaging


class Page(NamedTuple):
    """One page of a listing: its items (TikTok's objects as sent), the next cursor, and more?"""

    items: list[dict[str, Any]]
    cursor: int | None
    has_more: bool


def _scopes(value: Any) -> tuple[str, ...] | None:
    # Documented as a comma-separated string; a list of names is taken too.
    if isinstance(value, str):
        return tuple(s.strip() for s in value.split(",") if s.strip())
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(s.strip() for s in value if s.strip())
    return None


class BusinessClient:
    """Calls the Business API under ``{base}/open_api/v1.3/``."""

    def __init__(
        self, base_url: str, *, backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.backoff = backoff
        self.sleep = sleep
        retry = Retry(
            total=RETRY_ATTEMPTS - 1,
            backoff_factor=backoff / 2,
            backoff_jitter=backoff / 2,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # only idempotent calls use this session
            raise_on_status=False,
        )
        self._retrying = _session(retry)
        self._once = _session(0)

    # -- transport -------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        retry: bool,
        token: str | None = None,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``data`` of a successful answer; a typed ``TikTokError`` otherwise. An idempotent call
        answered with a rate-limit code is tried again after a backoff (2 more times)."""
        attempts = RETRY_ATTEMPTS if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._once_call(
                    method, path, retry=retry, token=token, params=params, body=body, extra=headers
                )
            except TikTokTransientError as exc:
                if attempt == attempts or not exc.code.isdigit() or int(exc.code) not in RATE_LIMIT_CODES:
                    raise
                self.sleep(self.backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def _once_call(
        self,
        method: str,
        path: str,
        *,
        retry: bool,
        token: str | None,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        extra: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", **(extra or {})}
        if token is not None:
            headers["Access-Token"] = token
        session = self._retrying if retry else self._once
        try:
            resp = session.request(
                method,
                self.base_url + PREFIX + path,
                params=params,
                data=None if body is None else json.dumps(body),
                headers=headers,
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise TikTokTransientError(type(exc).__name__) from None
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TikTokTransientError("http_error", status=resp.status_code)
        return envelope(resp.status_code, resp.content)

    # -- OAuth (tt_user) -------------------------------------------------------------------------
    def _token(self, path: str, creds: AppCredentials, body: dict[str, str]) -> TokenGrant:
        # Never retried: a code is single-use and a refresh token rotates.
        data = self._call(
            "POST",
            path,
            retry=False,
            body={"client_id": creds.client_key, "client_secret": creds.client_secret, **body},
        )
        access, refresh, open_id = data.get("access_token"), data.get("refresh_token"), data.get("open_id")
        expires_in = _int(data.get("expires_in"))
        refresh_expires_in = _int(data.get("refresh_token_expires_in"))
        scopes = _scopes(data.get("scope"))
        if not (
            isinstance(access, str)
            and access
            and isinstance(refresh, str)
            and refresh
            and isinstance(open_id, str)
            and open_id
            and expires_in
            and refresh_expires_in
            and scopes is not None
        ):
            raise TikTokResponseError("malformed_token_response")
        return TokenGrant(
            open_id=open_id,
            scopes=scopes,
            expires_in=expires_in,
            refresh_expires_in=refresh_expires_in,
            access_token=access,
            refresh_token=refresh,
        )

    def exchange_code(self, creds: AppCredentials, *, code: str, redirect_uri: str) -> TokenGrant:
        """``POST tt_user/oauth2/token/``: trade the callback's code for the account's tokens."""
        return self._token(
            "tt_user/oauth2/token/",
            creds,
            {"grant_type": "authorization_code", "auth_code": code, "redirect_uri": redirect_uri},
        )

    def refresh(self, creds: AppCredentials, refresh_token: str) -> TokenGrant:
        """``POST tt_user/oauth2/refresh_token/``; the refresh token rotates."""
        return self._token(
            "tt_user/oauth2/refresh_token/",
            creds,
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
        )

    def revoke(self, creds: AppCredentials, access_token: str) -> None:
        """``POST tt_user/oauth2/revoke/`` (idempotent: revoking twice leaves it revoked)."""
        self._call(
            "POST",
            "tt_user/oauth2/revoke/",
            retry=True,
            body={
                "client_id": creds.client_key,
                "client_secret": creds.client_secret,
                "access_token": access_token,
            },
        )

    # -- the account -----------------------------------------------------------------------------
    def profile(self, access_token: str, business_id: str) -> TikTokProfile:
        """``GET business/get/``: the account's name and picture (``open_id`` is the business_id)."""
        data = self._call(
            "GET",
            "business/get/",
            retry=True,
            token=access_token,
            params={"business_id": business_id, "fields": json.dumps(PROFILE_FIELDS)},
        )

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) and value else None

        return TikTokProfile(
            open_id=business_id,
            union_id=None,
            display_name=text("display_name") or text("username"),
            avatar_url=text("profile_image"),
        )

    def videos(self, access_token: str, business_id: str, *, max_count: int) -> Page:
        """``GET business/video/list/``: the account's newest videos (one page)."""
        data = self._call(
            "GET",
            "business/video/list/",
            retry=True,
            token=access_token,
            params={
                "business_id": business_id,
                "fields": json.dumps(VIDEO_FIELDS),
                "max_count": min(max_count, MAX_VIDEOS_PER_PAGE),
            },
        )
        return _page(data, "videos")

    def comments(self, access_token: str, business_id: str, video_id: str, *, cursor: int | None) -> Page:
        """``GET business/comment/list/``: one page of a video's comments, newest first."""
        params: dict[str, Any] = {
            "business_id": business_id,
            "video_id": video_id,
            "sort_field": "create_time",
            "sort_type": "desc",
            "max_count": MAX_COMMENTS_PER_PAGE,
        }
        if cursor:
            params["cursor"] = cursor
        data = self._call("GET", "business/comment/list/", retry=True, token=access_token, params=params)
        return _page(data, "comments")

    def conversations(self, access_token: str, business_id: str, kind: str, *, limit: int) -> Page:
        """``GET business/message/conversation/list/``: one page of ``kind``'s newest conversations."""
        params = {"business_id": business_id, "conversation_type": kind, "limit": limit}
        data = self._call(
            "GET", MESSAGES + "conversation/list/", retry=True, token=access_token, params=params
        )
        return _page(data, "conversations")

    def messages(self, access_token: str, business_id: str, conversation_id: str) -> Page:
        """``GET business/message/content/list/``: a conversation's messages (no cursor)."""
        params = {"business_id": business_id, "conversation_id": conversation_id}
        data = self._call("GET", MESSAGES + "content/list/", retry=True, token=access_token, params=params)
        return _page(data, "messages")

    # -- webhooks (per app) ----------------------------------------------------------------------
    def webhook_update(self, creds: AppCredentials, *, event_type: str, callback_url: str) -> dict[str, Any]:
        """``POST business/webhook/update/``: create or replace the app's callback for an event type."""
        return self._call(
            "POST",
            "business/webhook/update/",
            retry=True,  # setting the same URL again is the same configuration
            body={
                "app_id": creds.client_key,
                "secret": creds.client_secret,
                "event_type": event_type,
                "callback_url": callback_url,
            },
        )

    def webhook_list(self, creds: AppCredentials, *, event_type: str) -> dict[str, Any]:
        """``GET business/webhook/list/``: the app's configuration for an event type."""
        return self._call(
            "GET",
            "business/webhook/list/",
            retry=True,
            params={"app_id": creds.client_key, "secret": creds.client_secret, "event_type": event_type},
        )


def _page(data: dict[str, Any], key: str) -> Page:
    items = data.get(key)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise TikTokResponseError("malformed_page")
    return Page(
        items=[item for item in items if isinstance(item, dict)],
        cursor=_int(data.get("cursor")),
        has_more=data.get("has_more") is True,
    )


@lru_cache(maxsize=4)
def _client_for(base_url: str) -> BusinessClient:
    tracer.patch(("requests",))
    return BusinessClient(base_url)


def business_client() -> BusinessClient:
    """The container's client for ``TIKTOK_BUSINESS_API_BASE_URL``."""
    return _client_for(get_settings().business_api_base_url)


def reset_business_client() -> None:
    _client_for.cache_clear()
