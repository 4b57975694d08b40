"""TikTok faked at the HTTP boundary: ``responses`` routes the product's real ``requests`` calls
to the stateful model of TikTok's documented endpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

from orcapulse_local.tiktok_state import Fault, TikTokState

API = "https://open.tiktokapis.com"


def _form(request: Any) -> dict[str, str]:
    body = request.body or ""
    if isinstance(body, bytes):
        body = body.decode()
    return dict(parse_qsl(body, keep_blank_values=True))


class TikTokFake:
    def __init__(self, state: TikTokState, mock: responses.RequestsMock):
        self.state = state
        self.mock = mock
        for path, endpoint, method in (
            ("/v2/oauth/token/", "token", responses.POST),
            ("/v2/user/info/", "user_info", responses.GET),
            ("/v2/oauth/revoke/", "revoke", responses.POST),
        ):
            mock.add_callback(method, API + path, callback=self._handler(endpoint))
        self.requests: list[tuple[str, Any]] = []
        # Sees every call first and may answer it with a fault (see tests/support/faults.py).
        self.interceptor: Callable[[str], Fault | None] | None = None

    def _handler(self, endpoint: str):  # type: ignore[no-untyped-def]
        def handle(request: Any) -> tuple[int, dict[str, str], str]:
            self.requests.append((endpoint, request))
            fault = self.interceptor(endpoint) if self.interceptor is not None else None
            fault = self.state.take_fault(endpoint) or fault
            if fault is not None and fault.lost:
                self._answer(endpoint, request)  # TikTok did it; the answer is lost on the way back
                raise requests.ReadTimeout("read timed out")
            if fault is not None:
                if fault.timeout:
                    raise requests.ReadTimeout("read timed out")
                return fault.status, {"Content-Type": "application/json"}, json.dumps(fault.body or {})
            status, body = self._answer(endpoint, request)
            return status, {"Content-Type": "application/json"}, json.dumps(body)

        return handle

    def _answer(self, endpoint: str, request: Any) -> tuple[int, dict[str, Any]]:
        if endpoint == "token":
            return self.state.token(_form(request))
        if endpoint == "revoke":
            return self.state.revoke(_form(request))
        query = dict(parse_qsl(urlsplit(request.url).query))
        return self.state.user_info(request.headers.get("Authorization"), query.get("fields"))

    # Convenience passthroughs used by most tests.
    @property
    def calls(self) -> dict[str, int]:
        return self.state.calls

    def approve(self, authorize_url: str, open_id: str, granted_scopes: str | None = None) -> dict[str, str]:
        """Play the user approving on TikTok's consent page: the callback's query parameters."""
        query = dict(parse_qsl(urlsplit(authorize_url).query))
        self.state.issued.append(query["state"])  # the OAuth state must not reach a log either
        code = self.state.authorize(
            client_key=query["client_key"],
            redirect_uri=query["redirect_uri"],
            scope=query["scope"],
            code_challenge=query.get("code_challenge"),
            open_id=open_id,
            granted_scopes=granted_scopes,
        )
        return {
            "code": code,
            "scopes": granted_scopes if granted_scopes is not None else query["scope"],
            "state": query["state"],
        }
