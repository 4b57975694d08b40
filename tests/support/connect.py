"""Connect a TikTok account the way a user does: OAuth start → consent at (fake) TikTok →
callback. The one connect helper of the unit tests, the fault harness and the bench; its steps are
apart, so a caller can act between them (the fault harness starts each in a cold container)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, TypedDict, Unpack
from urllib.parse import parse_qsl, urlsplit

from tests.support.business_fake import BUSINESS_SCOPES, BusinessFake
from tests.support.events import claims, http_event, json_body
from tests.support.tiktok_fake import TikTokFake

START_PATH = "/integrations/tiktok/oauth/start"
CALLBACK_PATH = "/integrations/tiktok/oauth/callback"

LoadFunction = Callable[[str], ModuleType]


def approve(
    load_function: LoadFunction,
    lambda_context: Any,
    tiktok: TikTokFake,
    *,
    workspace: str = "ws-1",
    user: str = "user-1",
    open_id: str = "open-id-alpha",
) -> dict[str, str]:
    """OAuth start as ``user`` of ``workspace``, then consent at TikTok as ``open_id``: the query
    TikTok redirects the browser to the callback with."""
    started = load_function("oauth_start").lambda_handler(
        http_event("GET", START_PATH, jwt_claims=claims(user=user, workspace=workspace)), lambda_context
    )
    return tiktok.approve(json_body(started)["authorize_url"], open_id)


def approve_business(
    load_function: LoadFunction,
    lambda_context: Any,
    business: BusinessFake,
    business_id: str,
    *,
    workspace: str = "ws-1",
    user: str = "user-1",
    scopes: str = BUSINESS_SCOPES,
) -> dict[str, str]:
    """OAuth start with ``account_type=business`` as ``user`` of ``workspace``, then consent at
    TikTok as the business account ``business_id`` granting ``scopes``: the query of the redirect
    to the callback."""
    started = load_function("oauth_start").lambda_handler(
        http_event(
            "GET",
            START_PATH,
            jwt_claims=claims(user=user, workspace=workspace),
            query={"account_type": "business"},
        ),
        lambda_context,
    )
    assert started["statusCode"] == 200, started
    return business.approve(json_body(started)["authorize_url"], business_id, scopes)


def callback(load_function: LoadFunction, lambda_context: Any, params: dict[str, str]) -> dict[str, Any]:
    """The OAuth callback's response to TikTok's redirect with ``params``."""
    response: dict[str, Any] = load_function("oauth_callback").lambda_handler(
        http_event("GET", CALLBACK_PATH, query=params), lambda_context
    )
    return response


def redirect_query(response: dict[str, Any]) -> dict[str, str]:
    """The query of the callback's redirect to the console (``status``, ``reason``, ``integration_id``)."""
    return dict(parse_qsl(urlsplit(response.get("headers", {}).get("Location", "")).query))


class Who(TypedDict, total=False):
    """Who connects: ``approve``'s keyword arguments."""

    workspace: str
    user: str
    open_id: str


def connect(load_function: LoadFunction, lambda_context: Any, tiktok: TikTokFake, **who: Unpack[Who]) -> str:
    """Connect ``open_id`` to ``workspace`` (as ``approve`` does); the integration id the callback
    redirected with."""
    params = approve(load_function, lambda_context, tiktok, **who)
    query = redirect_query(callback(load_function, lambda_context, params))
    assert query.get("status") == "connected", query
    return query["integration_id"]


ADS_START_PATH = "/integrations/tiktok-ads/oauth/start"
ADS_CALLBACK_PATH = "/integrations/tiktok-ads/oauth/callback"


def approve_ads(
    load_function: LoadFunction,
    lambda_context: Any,
    ads: Any,
    advertiser_ids: list[str],
    *,
    workspace: str = "ws-1",
    user: str = "user-1",
) -> dict[str, str]:
    """The advertiser OAuth start as ``user`` of ``workspace``, then consent for ``advertiser_ids``
    (``ads`` is a ``tests.support.ads_fake.AdsFake``): the query TikTok redirects the browser with."""
    started = load_function("oauth_start").lambda_handler(
        http_event("GET", ADS_START_PATH, jwt_claims=claims(user=user, workspace=workspace)), lambda_context
    )
    return dict(ads.approve(json_body(started)["authorize_url"], advertiser_ids))


def ads_callback(load_function: LoadFunction, lambda_context: Any, params: dict[str, str]) -> dict[str, Any]:
    """The advertiser callback's response to TikTok's redirect with ``params``."""
    response: dict[str, Any] = load_function("oauth_callback").lambda_handler(
        http_event("GET", ADS_CALLBACK_PATH, query=params), lambda_context
    )
    return response


def connect_ads(
    load_function: LoadFunction,
    lambda_context: Any,
    ads: Any,
    advertiser_ids: list[str],
    *,
    workspace: str = "ws-1",
    user: str = "user-1",
) -> str:
    """Connect ``advertiser_ids`` to ``workspace`` as ``user``; the ads integration's id."""
    params = approve_ads(load_function, lambda_context, ads, advertiser_ids, workspace=workspace, user=user)
    query = redirect_query(ads_callback(load_function, lambda_context, params))
    assert query.get("status") == "connected", query
    return query["integration_id"]
