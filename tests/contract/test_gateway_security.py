"""Security headers and CORS as a browser meets them: through the local gateway, which serves the
template's routes with its CorsConfiguration, not by calling a handler."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from orcapulse_local.stack import LocalStack

pytestmark = pytest.mark.slow
FOREIGN_ORIGINS = ("https://evil.example", "null", "http://127.0.0.1:1")


def _callback_headers_ok(response: requests.Response, front_end: str) -> dict[str, str]:
    assert response.status_code == 302
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    location = response.headers["Location"]
    assert location.startswith(front_end + "/integrations/tiktok?")
    return dict(parse_qsl(urlsplit(location).query))


def test_the_callback_forbids_caching_and_referrers_through_the_gateway(stack: LocalStack):
    callback = stack.api_url + "/integrations/tiktok/oauth/callback"
    for query in (
        {},
        {"state": "forged", "code": "forged", "scopes": "user.info.basic"},
        {"error": "access_denied"},
    ):
        outcome = _callback_headers_ok(
            requests.get(callback, params=query, allow_redirects=False, timeout=30), stack.api_url
        )
        assert outcome["status"] == "error"

    # And on success: approve at the emulator and follow TikTok's redirect to the callback.
    token = stack.dev_token("ws-headers", "u-headers")
    start = requests.get(
        stack.api_url + "/integrations/tiktok/oauth/start",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    authorize = start.json()["authorize_url"]
    approved = requests.post(
        authorize.split("?")[0],
        data={
            **dict(parse_qsl(urlsplit(authorize).query)),
            "decision": "approve",
            "open_id": "open-id-tide-pool",
        },
        allow_redirects=False,
        timeout=30,
    )
    landing = requests.get(approved.headers["Location"], allow_redirects=False, timeout=30)
    assert _callback_headers_ok(landing, stack.api_url)["status"] == "connected"


def test_cors_answers_only_the_front_end_origin_through_the_gateway(stack: LocalStack, bearer):
    front_end = stack.api_url  # FrontendOrigin of the local deployment: the console it serves
    url = stack.api_url + "/social-leads"
    preflight = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"}

    allowed = requests.options(url, headers={"Origin": front_end, **preflight}, timeout=30)
    assert allowed.headers["Access-Control-Allow-Origin"] == front_end
    methods = {m.strip() for m in allowed.headers["Access-Control-Allow-Methods"].split(",")}
    # The API's methods (lead merge is a POST, lifecycle changes a PATCH, erasure a DELETE), no other.
    assert {"GET", "POST", "DELETE"} <= methods <= {"GET", "POST", "PATCH", "DELETE", "OPTIONS"}
    assert "*" not in allowed.headers["Access-Control-Allow-Headers"]
    response = requests.get(url, headers={**bearer, "Origin": front_end}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == front_end

    for origin in FOREIGN_ORIGINS:
        refused = requests.options(url, headers={"Origin": origin, **preflight}, timeout=30)
        assert "Access-Control-Allow-Origin" not in refused.headers, origin
        response = requests.get(url, headers={**bearer, "Origin": origin}, timeout=30)
        assert "Access-Control-Allow-Origin" not in response.headers, origin
        assert "Access-Control-Allow-Credentials" not in response.headers, origin
