"""TikTok API for Business faked at the HTTP boundary: ``responses`` routes the product's calls to
the stateful model of the Accounts API endpoints the product uses (``orcapulse_local.business_state``,
the same model the local emulator serves)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

from orcapulse_local.business_state import BUSINESS_SCOPES, ENDPOINTS, PREFIX, BusinessState
from orcapulse_local.tiktok_state import Fault

__all__ = ["BASE", "BUSINESS_SCOPES", "BusinessFake", "BusinessState"]

BASE = "https://business-api.tiktok.com" + PREFIX


class BusinessFake:
    """Routes the product's calls to ``BusinessState``; ``requests`` lists them in order."""

    def __init__(self, state: BusinessState, mock: responses.RequestsMock):
        self.state = state
        self.requests: list[str] = []
        # Sees every call first and may answer it with a fault (see tests/support/faults.py).
        self.interceptor: Callable[[str], Fault | None] | None = None
        for endpoint, (method, path) in ENDPOINTS.items():
            mock.add_callback(method, BASE + path, callback=self._handler(endpoint))

    def _handler(self, endpoint: str):  # type: ignore[no-untyped-def]
        def handle(request: Any) -> tuple[int, dict[str, str], str]:
            self.requests.append(endpoint)
            intercepted = self.interceptor(endpoint) if self.interceptor is not None else None
            fault = self.state.take_fault(endpoint)
            if fault == "timeout" or (intercepted is not None and intercepted.timeout):
                raise requests.ReadTimeout("read timed out")
            if fault is not None:
                return 200, {"Content-Type": "application/json"}, json.dumps(self.state.fault_answer(fault))
            if intercepted is not None and not intercepted.lost:
                return intercepted.status, {"Content-Type": "application/json"}, json.dumps(intercepted.body)
            query = dict(parse_qsl(urlsplit(request.url).query))
            raw = request.body or b"{}"
            body = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            answer = self.state.answer(endpoint, query, body, request.headers.get("Access-Token"))
            if intercepted is not None:  # lost: TikTok did it; the answer is lost on the way back
                raise requests.ReadTimeout("read timed out")
            return 200, {"Content-Type": "application/json"}, json.dumps(answer)

        return handle

    def approve(self, authorize_url: str, business_id: str, scopes: str = BUSINESS_SCOPES) -> dict[str, str]:
        """The business account owner approves on TikTok's consent page: the callback's query."""
        query = dict(parse_qsl(urlsplit(authorize_url).query))
        assert query["client_key"] == self.state.app_id
        self.state.issued.append(query["state"])
        code = self.state.authorize(business_id, scopes=scopes, redirect_uri=query["redirect_uri"])
        return {"code": code, "scopes": scopes, "state": query["state"]}
