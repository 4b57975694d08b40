"""Connect a TikTok account the way a user does: OAuth start → consent at (fake) TikTok →
callback. Returns the integration id the callback redirected with."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.events import claims, http_event, json_body


def connect(
    load_function: Any,
    lambda_context: Any,
    tiktok: Any,
    *,
    workspace: str = "ws-1",
    user: str = "user-1",
    open_id: str = "open-id-alpha",
) -> str:
    start = load_function("oauth_start")
    callback = load_function("oauth_callback")
    started = start.lambda_handler(
        http_event(
            "GET", "/integrations/tiktok/oauth/start", jwt_claims=claims(user=user, workspace=workspace)
        ),
        lambda_context,
    )
    params = tiktok.approve(json_body(started)["authorize_url"], open_id)
    done = callback.lambda_handler(
        http_event("GET", "/integrations/tiktok/oauth/callback", query=params), lambda_context
    )
    query = dict(parse_qsl(urlsplit(done["headers"]["Location"]).query))
    assert query.get("status") == "connected", query
    return query["integration_id"]
