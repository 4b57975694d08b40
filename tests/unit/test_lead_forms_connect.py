"""Connecting TikTok advertisers (DESIGN §10): the ads OAuth flow, LEAD subscriptions kept on the
integration (pending when a subscribe fails, completed by the next check), and disconnect."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.support.connect import ADS_START_PATH, ads_callback, approve_ads, connect_ads, redirect_query
from tests.support.deployment import ADS_REDIRECT_URI, LEADS_WEBHOOK_URL
from tests.support.events import claims, http_event, json_body
from tests.support.lead_forms import (
    ADVERTISER,
    signed,
    submissions,
)
from tests.support.webhooks import recording_aws_calls, status_of, stored_leads

ROUTE = "/integrations/tiktok/{integration_id}"


@pytest.fixture
def delete(load_function, lambda_context, aws):
    module = load_function("disconnect")

    def call(integration_id: str):
        event = http_event(
            "DELETE",
            f"/integrations/tiktok/{integration_id}",
            route=ROUTE,
            path_parameters={"integration_id": integration_id},
            jwt_claims=claims(workspace="ws-1"),
        )
        return module.lambda_handler(event, lambda_context)

    return call


@pytest.fixture
def listed(load_function, lambda_context, aws):
    module = load_function("leads_query")

    def call() -> list[dict[str, Any]]:
        event = http_event("GET", "/integrations", jwt_claims=claims(workspace="ws-1"))
        items: list[dict[str, Any]] = json_body(module.lambda_handler(event, lambda_context))["items"]
        return items

    return call


def integration_items(aws: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws.items("IntegrationsTable")
    return items


def test_start_sends_the_advertiser_to_the_consent_page(load_function, lambda_context, ads, aws):
    response = load_function("oauth_start").lambda_handler(
        http_event("GET", ADS_START_PATH, jwt_claims=claims()), lambda_context
    )
    url = json_body(response)["authorize_url"]
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://business-api.tiktok.com/portal/auth"
    query = dict(parse_qsl(parts.query))
    assert query["app_id"] == ads.state.app_id
    assert query["redirect_uri"] == ADS_REDIRECT_URI
    assert len(query["state"]) >= 43
    redirected = load_function("oauth_start").lambda_handler(
        http_event("GET", ADS_START_PATH, query={"redirect": "true"}, jwt_claims=claims()), lambda_context
    )
    assert redirected["statusCode"] == 302


def test_start_without_a_workspace_is_403_and_without_claims_401(load_function, lambda_context, aws):
    start = load_function("oauth_start").lambda_handler
    assert (
        start(http_event("GET", ADS_START_PATH, jwt_claims=claims(workspace=None)), lambda_context)[
            "statusCode"
        ]
        == 403
    )
    assert start(http_event("GET", ADS_START_PATH), lambda_context)["statusCode"] == 401


def test_connect_stores_the_token_the_advertisers_and_their_subscriptions(
    ads_integration, ads_state, form, listed, aws
):
    [item] = [i for i in listed() if i["integration_id"] == ads_integration]
    assert item["account_type"] == "ads"
    assert item["status"] == "active"
    assert item["advertiser_ids"] == [ADVERTISER]
    assert item["subscription_status"] == "subscribed"
    assert item["capabilities"] == ["lead_forms", "lead_form_catch_up"]
    assert "token" not in str(item).lower()
    [subscription] = ads_state.subscriptions.values()
    assert subscription["callback_url"] == LEADS_WEBHOOK_URL
    assert subscription["subscription_detail"]["advertiser_id"] == ADVERTISER
    assert ads_integration in aws.token_secrets()


@pytest.mark.parametrize(
    ("break_it", "reason"),
    [
        (lambda p, s: {**p, "auth_code": "", "error": "access_denied"}, "access_denied"),
        (lambda p, s: {"state": p["state"]}, "access_denied"),
        (lambda p, s: {**p, "state": "forged-" + p["state"]}, "invalid_state"),
        (lambda p, s: {**p, "auth_code": "not-a-code"}, "token_exchange_failed"),
        (lambda p, s: s.fail_next("advertisers", 40001, "No permission") or p, "profile_fetch_failed"),
        (lambda p, s: s.fail_next("access_token", 50000) or p, "token_exchange_failed"),
    ],
)
def test_a_failed_connect_redirects_with_the_reason_and_stores_nothing(
    load_function, lambda_context, ads, ads_state, aws, break_it, reason
):
    params = approve_ads(load_function, lambda_context, ads, [ADVERTISER])
    before_tokens = dict(ads_state.tokens)
    response = ads_callback(load_function, lambda_context, break_it(params, ads_state))
    assert response["statusCode"] == 302
    assert redirect_query(response) == {"status": "error", "reason": reason}
    assert integration_items(aws) == []
    assert aws.token_secrets() == {}
    # A token obtained before the failure is revoked.
    assert all(t.get("revoked") for k, t in ads_state.tokens.items() if k not in before_tokens)


def test_a_state_is_single_use_and_belongs_to_its_own_callback(
    load_function, lambda_context, ads, aws, tiktok
):
    params = approve_ads(load_function, lambda_context, ads, [ADVERTISER])
    assert redirect_query(ads_callback(load_function, lambda_context, params))["status"] == "connected"
    assert redirect_query(ads_callback(load_function, lambda_context, params))["reason"] == "invalid_state"
    # An advertiser state is not a Login Kit one.
    other = approve_ads(load_function, lambda_context, ads, [ADVERTISER])
    response = load_function("oauth_callback").lambda_handler(
        http_event(
            "GET",
            "/integrations/tiktok/oauth/callback",
            query={"code": other["auth_code"], "state": other["state"], "scopes": "user.info.basic"},
        ),
        lambda_context,
    )
    assert redirect_query(response)["reason"] == "invalid_state"


def test_a_store_failure_rolls_everything_back(load_function, lambda_context, ads, ads_state, aws):
    params = approve_ads(load_function, lambda_context, ads, [ADVERTISER])
    with recording_aws_calls() as calls:
        calls.lose_next("dynamodb.UpdateItem")  # the record write takes effect; its answer is lost
        response = ads_callback(load_function, lambda_context, params)
    assert redirect_query(response) == {"status": "error", "reason": "internal_error"}
    assert integration_items(aws) == []
    assert aws.token_secrets() == {}
    assert all(t.get("revoked") for t in ads_state.tokens.values())


def test_a_failed_subscribe_is_pending_and_the_next_check_completes_it(
    load_function, lambda_context, ads, ads_state, form, listed, aws
):
    ads_state.fail_next("subscribe", 50000, "Internal error")
    integration_id = connect_ads(load_function, lambda_context, ads, [ADVERTISER])
    [item] = listed()
    assert item["subscription_status"] == "pending"
    assert item["pending_advertiser_ids"] == [ADVERTISER]
    assert ads_state.subscriptions == {}

    from orcapulse_tiktok.lead_subscriptions import ensure_subscribed

    assert ensure_subscribed("ws-1", integration_id).pending == 0
    [item] = listed()
    assert item["subscription_status"] == "subscribed"
    assert len(ads_state.subscriptions) == 1


def test_a_subscribe_whose_answer_was_lost_is_adopted_not_repeated(
    load_function, lambda_context, ads, ads_state, form, listed, aws
):
    ads_state.timeout_next("subscribe")  # the answer never came
    integration_id = connect_ads(load_function, lambda_context, ads, [ADVERTISER])
    assert listed()[0]["subscription_status"] == "pending"
    # What TikTok did with the lost request: the subscription exists.
    ads_state.subscriptions["7499999999999999999"] = {
        "subscribe_entity": "LEAD",
        "callback_url": LEADS_WEBHOOK_URL,
        "subscription_detail": {"advertiser_id": ADVERTISER, "lead_source": "INSTANT_FORM"},
    }
    from orcapulse_tiktok.lead_subscriptions import ensure_subscribed

    ensure_subscribed("ws-1", integration_id)
    assert list(ads_state.subscriptions) == ["7499999999999999999"]
    assert listed()[0]["subscription_status"] == "subscribed"


def test_an_invalid_advertiser_token_marks_needs_reauth(
    load_function, lambda_context, ads, ads_state, form, listed, aws
):
    ads_state.fail_next("subscribe", 40105, "The access token is invalid")
    connect_ads(load_function, lambda_context, ads, [ADVERTISER])
    [item] = listed()
    assert item["status"] == "needs_reauth"
    assert item["subscription_status"] == "pending"


def test_disconnect_unsubscribes_then_removes_secret_routes_and_record(
    ads_integration, ads_state, delete, leads_webhook, aws
):
    response = delete(ads_integration)
    assert response["statusCode"] == 200
    assert json_body(response) == {"integration_id": ads_integration, "revoked": True}
    assert ads_state.subscriptions == {}
    assert integration_items(aws) == []  # the record and its advertiser route items
    assert aws.token_secrets() == {}
    body = ads_state.delivery(submissions(ads_state, ads_state.forms[ADVERTISER][0], 1))
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "ignored")


def test_disconnect_with_unsubscribe_failing_once_is_503_and_a_retry_completes(
    ads_integration, ads_state, delete, aws
):
    ads_state.fail_next("unsubscribe", 50000, "Internal error")
    response = delete(ads_integration)
    assert response["statusCode"] == 503
    assert len(ads_state.subscriptions) == 1
    assert ads_integration in aws.token_secrets()  # nothing removed before the subscriptions

    assert delete(ads_integration)["statusCode"] == 200
    assert ads_state.subscriptions == {}
    assert integration_items(aws) == []
    assert aws.token_secrets() == {}


def test_disconnect_keeps_a_subscription_another_workspace_still_uses(
    load_function, lambda_context, ads, ads_integration, ads_state, delete, leads_webhook, form, aws
):
    connect_ads(load_function, lambda_context, ads, [ADVERTISER], workspace="ws-2", user="user-2")
    assert delete(ads_integration)["statusCode"] == 200
    assert len(ads_state.subscriptions) == 1
    body = ads_state.delivery(submissions(ads_state, form, 1))
    assert status_of(leads_webhook(body, signed(ads_state, body))) == (200, "accepted")
    assert [lead["workspace_id"] for lead in stored_leads(aws)] == ["ws-2"]


def test_an_advertiser_route_item_is_never_a_comment_webhook_target(
    ads_integration, webhook, tiktok_state, aws
):
    from tests.support.webhooks import comment_content

    # Even an event naming the route item's open_id finds no TikTok account there.
    body = tiktok_state.envelope("comment.update", f"advertiser:{ADVERTISER}", comment_content())
    assert status_of(webhook.post(body, webhook.signed(body))) == (200, "ignored")
    assert stored_leads(aws) == []
