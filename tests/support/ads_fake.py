"""The Marketing API of lead forms faked at the HTTP boundary: ``responses`` routes the product's
calls to ``orcapulse_local.ads_state.AdsState`` (the same model the local emulator serves), on the
Business app's credentials."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

from orcapulse_local.ads_state import ENDPOINTS, AdsState, request_id
from orcapulse_local.tiktok_state import Fault
from tests.support.business_fake import BASE


class AdsFake:
    """Routes the product's Marketing API calls to ``state``; ``requests`` lists them in order."""

    def __init__(self, state: AdsState, mock: responses.RequestsMock):
        self.state = state
        self.requests: list[str] = []
        # Sees every call first and may answer it with a fault (the fault matrix: tests/support/faults.py).
        self.interceptor: Callable[[str], Fault | None] | None = None
        for endpoint, (method, path) in ENDPOINTS.items():
            mock.add_callback(method, BASE + path, callback=self._handler(endpoint))

    def _handler(self, endpoint: str):  # type: ignore[no-untyped-def]
        def handle(request: Any) -> tuple[int, dict[str, str], bytes]:
            self.requests.append(endpoint)
            injected = self.interceptor(f"ads.{endpoint}") if self.interceptor is not None else None
            fault = self.state.take_fault(endpoint)
            if fault == "timeout" or (injected is not None and injected.timeout):
                raise requests.ReadTimeout("read timed out")
            if fault is not None:
                answer = {**fault, "request_id": request_id(), "data": {}}
                return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()
            if injected is not None and not injected.lost:
                return (
                    injected.status,
                    {"Content-Type": "application/json"},
                    json.dumps(injected.body or {}).encode(),
                )
            query = dict(parse_qsl(urlsplit(request.url).query))
            raw = request.body or b"{}"
            body = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            reply = self.state.answer(endpoint, query, body, request.headers.get("Access-Token"))
            if injected is not None:  # TikTok did it; the answer is lost on the way back
                raise requests.ReadTimeout("read timed out")
            return reply

        return handle

    def approve(self, authorize_url: str, advertiser_ids: list[str]) -> dict[str, str]:
        """The advertiser approves on the consent page: the callback's query (``auth_code``, ``state``)."""
        query = dict(parse_qsl(urlsplit(authorize_url).query))
        assert query["app_id"] == self.state.app_id
        self.state.issued.append(query["state"])
        return {"auth_code": self.state.authorize(advertiser_ids), "state": query["state"]}
