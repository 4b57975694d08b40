"""Business accounts (DESIGN §8): connect through TikTok API for Business, refresh and revoke its
tokens, accept its signed webhooks, catch missed comments up, register the webhook URL. TikTok's
Business API is faked at the HTTP boundary (tests/support/business_fake.py), answering HTTP 200
with a non-zero ``code`` for every error, as its docs show."""

from __future__ import annotations

import importlib.util
import threading
import time
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.client import BaseClient
from orcapulse_tiktok import business_catchup, clock, tokens
from orcapulse_tiktok.models.integration import integrations

from tests.support.business_fake import BusinessFake, BusinessState
from tests.support.connect import approve_business
from tests.support.events import claims, http_event, json_body
from tests.support.faults import aws_calls
from tests.support.webhooks import Webhook, comment_content, lead_items, message_content

BUSINESS_ID = "biz-open-id-orca"
WORKSPACE = "ws-biz"
START = "/integrations/tiktok/oauth/start"
CALLBACK = "/integrations/tiktok/oauth/callback"


def start(load_function, lambda_context, query: dict[str, str] | None = None) -> dict[str, Any]:
    return cast(
        dict[str, Any],
        load_function("oauth_start").lambda_handler(
            http_event("GET", START, jwt_claims=claims(user="user-1", workspace=WORKSPACE), query=query),
            lambda_context,
        ),
    )


def callback(load_function, lambda_context, params: dict[str, str]) -> dict[str, str]:
    done = load_function("oauth_callback").lambda_handler(
        http_event("GET", CALLBACK, query=params), lambda_context
    )
    assert done["statusCode"] == 302
    return dict(parse_qsl(urlsplit(done["headers"]["Location"]).query))


def connect_business(load_function, lambda_context, business: BusinessFake, **approve: Any) -> dict[str, str]:
    params = approve_business(
        load_function, lambda_context, business, BUSINESS_ID, workspace=WORKSPACE, **approve
    )
    return callback(load_function, lambda_context, params)


def stored(aws) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return aws.items("IntegrationsTable"), aws.token_secrets()


# -- start ---------------------------------------------------------------------------------------------
def test_business_start_uses_the_business_app_and_scopes_without_pkce(
    load_function, lambda_context, aws, business
):
    started = start(load_function, lambda_context, {"account_type": "business"})
    query = dict(parse_qsl(urlsplit(json_body(started)["authorize_url"]).query))
    assert query["client_key"] == business.state.app_id
    assert set(query["scope"].split(",")) >= {"user.info.basic", "comment.list", "message.list.read"}
    assert "code_challenge" not in query
    [state] = aws.items("OAuthStatesTable")
    assert state["account_type"]["S"] == "business"
    assert query["state"] not in str(state)  # stored hashed


@pytest.mark.parametrize("value", ["ads", "Business", "", "personal,business"])
def test_start_refuses_an_unknown_account_type(load_function, lambda_context, aws, value):
    response = start(load_function, lambda_context, {"account_type": value})
    assert (response["statusCode"], json_body(response)["error"]["code"]) == (400, "invalid_parameter")


def test_start_defaults_to_personal(load_function, lambda_context, aws, tiktok_state):
    started = start(load_function, lambda_context)
    query = dict(parse_qsl(urlsplit(json_body(started)["authorize_url"]).query))
    assert query["client_key"] == tiktok_state.client_key
    assert query["code_challenge_method"] == "S256"


# -- callback ------------------------------------------------------------------------------------------
def test_business_connect_stores_tokens_and_a_business_integration(
    load_function, lambda_context, aws, business
):
    result = connect_business(load_function, lambda_context, business)
    assert result["status"] == "connected"
    [item], secrets = stored(aws)
    assert item["account_type"]["S"] == "business"
    assert item["open_id"]["S"] == BUSINESS_ID
    assert item["display_name"]["S"] == "Orca Shop"
    assert set(secrets) == {result["integration_id"]}
    assert "access_token" not in str(item)
    listed = load_function("leads_query").lambda_handler(
        http_event("GET", "/integrations", jwt_claims=claims(user="user-1", workspace=WORKSPACE)),
        lambda_context,
    )
    [public] = json_body(listed)["items"]
    assert public["account_type"] == "business"
    assert {"comments", "direct_messages"} <= set(public["capabilities"])


def test_business_consent_declined_is_access_denied(load_function, lambda_context, aws, business):
    started = start(load_function, lambda_context, {"account_type": "business"})
    state = dict(parse_qsl(urlsplit(json_body(started)["authorize_url"]).query))["state"]
    business.state.issued.append(state)
    result = callback(load_function, lambda_context, {"error": "access_denied", "state": state})
    assert result == {"status": "error", "reason": "access_denied"}
    assert stored(aws) == ([], {})
    assert business.state.calls["token"] == 0


def test_business_callback_with_a_replayed_state_is_invalid_state(
    load_function, lambda_context, aws, business
):
    started = start(load_function, lambda_context, {"account_type": "business"})
    params = business.approve(json_body(started)["authorize_url"], BUSINESS_ID)
    assert callback(load_function, lambda_context, params)["status"] == "connected"
    assert callback(load_function, lambda_context, params)["reason"] == "invalid_state"


def test_business_callback_with_an_expired_state_is_invalid_state(
    load_function, lambda_context, aws, business, monkeypatch
):
    started = start(load_function, lambda_context, {"account_type": "business"})
    params = business.approve(json_body(started)["authorize_url"], BUSINESS_ID)
    real = clock.now()
    monkeypatch.setattr(clock, "now", lambda: real + 601)
    assert callback(load_function, lambda_context, params)["reason"] == "invalid_state"
    assert business.state.calls["token"] == 0


@pytest.mark.parametrize("missing", ["user.info.basic", "comment.list", "message.list.read"])
def test_business_missing_scope_in_the_callback_stores_nothing(
    load_function, lambda_context, aws, business, missing
):
    scopes = ",".join(s for s in business_scopes() if s != missing)
    result = connect_business(load_function, lambda_context, business, scopes=scopes)
    assert result == {"status": "error", "reason": "missing_scope"}
    assert stored(aws) == ([], {})
    assert business.state.calls["token"] == 0


def test_business_missing_scope_in_the_grant_revokes_the_token(load_function, lambda_context, aws, business):
    started = start(load_function, lambda_context, {"account_type": "business"})
    params = business.approve(
        json_body(started)["authorize_url"], BUSINESS_ID, scopes="user.info.basic,comment.list"
    )
    params["scopes"] = ",".join(business_scopes())  # the query claims more than the grant holds
    assert callback(load_function, lambda_context, params)["reason"] == "missing_scope"
    assert stored(aws) == ([], {})
    assert len(business.state.revoked) == 1


def business_scopes() -> list[str]:
    from tests.support.business_fake import BUSINESS_SCOPES

    return BUSINESS_SCOPES.split(",")


@pytest.mark.parametrize(
    ("endpoint", "code", "reason", "revoked"),
    [
        ("token", 40002, "token_exchange_failed", 0),
        ("token", 40100, "token_exchange_failed", 0),
        ("token", 50000, "token_exchange_failed", 0),
        ("profile", 40001, "profile_fetch_failed", 1),
        ("profile", 40105, "profile_fetch_failed", 1),
        ("profile", 40100, "profile_fetch_failed", 1),
    ],
)
def test_business_api_error_codes_with_http_200_store_nothing(
    load_function, lambda_context, aws, business, endpoint, code, reason, revoked
):
    business.state.fail_next(endpoint, code=code, times=3)
    result = connect_business(load_function, lambda_context, business)
    assert result == {"status": "error", "reason": reason}
    assert stored(aws) == ([], {})
    assert len(business.state.revoked) == revoked


def test_business_token_exchange_is_never_retried(load_function, lambda_context, aws, business):
    business.state.fail_next("token", code=40100)
    assert connect_business(load_function, lambda_context, business)["reason"] == "token_exchange_failed"
    assert business.state.calls["token"] == 1


def test_business_save_failure_rolls_back_and_revokes(load_function, lambda_context, aws, business):
    started = start(load_function, lambda_context, {"account_type": "business"})
    params = business.approve(json_body(started)["authorize_url"], BUSINESS_ID)
    with aws_calls(fail={"UpdateItem": 1}, code="ThrottlingException"):
        result = callback(load_function, lambda_context, params)
    assert result == {"status": "error", "reason": "internal_error"}
    assert stored(aws) == ([], {})
    assert len(business.state.revoked) == 1


def test_business_revoke_failure_during_rollback_is_logged_not_raised(
    load_function, lambda_context, aws, business
):
    business.state.fail_next("profile", code=40001)
    business.state.fail_next("revoke", code=50000, times=3)
    assert connect_business(load_function, lambda_context, business)["reason"] == "profile_fetch_failed"
    assert stored(aws) == ([], {})


# -- tokens ----------------------------------------------------------------------------------------------
@pytest.fixture
def connected(load_function, lambda_context, aws, business) -> str:
    return connect_business(load_function, lambda_context, business)["integration_id"]


def record(integration_id: str):
    return integrations().get(WORKSPACE, integration_id, consistent_read=True)


def test_two_concurrent_refreshes_of_a_business_account_make_one_token_call(
    connected, aws, business, monkeypatch
):
    t0 = time.time()
    monkeypatch.setattr(clock, "now", lambda: t0 + 86400 + 60)
    lease_seen_taken = threading.Event()
    real_answer = business.state.answer

    def slow(endpoint: str, *args: Any):
        if endpoint == "refresh":
            lease_seen_taken.wait(5)
        return real_answer(endpoint, *args)

    def waiting(_seconds: float) -> None:
        lease_seen_taken.set()
        time.sleep(0.1)

    monkeypatch.setattr(business.state, "answer", slow)
    real_call = BaseClient._make_api_call  # type: ignore[attr-defined]  # botocore-stubs omit this private method
    one_at_a_time = threading.Lock()

    def atomic_call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        with one_at_a_time:
            return real_call(self, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", atomic_call)
    results: list[str] = []

    def caller() -> None:
        results.append(tokens.access_token(record(connected), sleep=waiting))

    threads = [threading.Thread(target=caller) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert len(results) == 2
    assert results[0] == results[1]
    assert business.state.calls["refresh"] == 1
    assert aws.token_secrets()[connected]["access_token"] == results[0]


def test_a_dead_business_grant_marks_needs_reauth(connected, aws, business, monkeypatch):
    t0 = time.time()
    monkeypatch.setattr(clock, "now", lambda: t0 + 86400 + 60)
    business.state.fail_next("refresh", code=40105, message="The refresh token is invalid")
    with pytest.raises(tokens.ReauthRequired):
        tokens.access_token(record(connected), sleep=lambda _s: None)
    assert record(connected).status == "needs_reauth"


def test_a_rate_limited_business_refresh_is_transient(connected, aws, business, monkeypatch):
    from orcapulse_tiktok.errors import TransientError

    t0 = time.time()
    monkeypatch.setattr(clock, "now", lambda: t0 + 86400 + 60)
    business.state.fail_next("refresh", code=40100)
    with pytest.raises(TransientError):
        tokens.access_token(record(connected), sleep=lambda _s: None)
    assert record(connected).status == "active"
    assert record(connected).refresh_failures == 1
    assert business.state.calls["refresh"] == 1  # a rotating call is never retried blindly


def test_disconnect_revokes_a_business_token_at_the_business_api(
    connected, aws, business, tiktok, load_function, lambda_context
):
    token = aws.token_secrets()[connected]["access_token"]
    response = load_function("disconnect").lambda_handler(
        http_event(
            "DELETE",
            f"/integrations/tiktok/{connected}",
            jwt_claims=claims(user="user-1", workspace=WORKSPACE),
        ),
        lambda_context,
    )
    assert json_body(response) == {"integration_id": connected, "revoked": True}
    assert business.state.revoked == [token]
    assert tiktok.calls["revoke"] == 0
    assert stored(aws) == ([], {})


# -- webhook ------------------------------------------------------------------------------------------
@pytest.fixture
def webhook(load_function, lambda_context, aws, tiktok_state) -> Webhook:
    return Webhook(load_function("webhook"), lambda_context, tiktok_state)


def deliver(webhook: Webhook, state: BusinessState, event: str, content: dict[str, Any], *, secret=None):
    body = state.envelope(event, BUSINESS_ID, content)
    if secret is None:
        headers = {"TikTok-Signature": state.sign(body)}
    else:
        headers = webhook.signed(body, secret=secret)
    return webhook.post(body, headers)


def test_a_business_delivery_signed_by_the_business_app_is_captured(connected, webhook, business):
    response = deliver(webhook, business.state, "comment.update", comment_content())
    assert json_body(response) == {"status": "accepted"}


def test_a_business_delivery_signed_with_the_login_kit_secret_is_401(
    connected, webhook, business, tiktok_state
):
    response = deliver(
        webhook, business.state, "comment.update", comment_content(), secret=tiktok_state.client_secret
    )
    assert (response["statusCode"], json_body(response)["error"]["code"]) == (401, "unknown_client_key")


def test_a_login_kit_delivery_signed_with_the_business_secret_is_401(
    connected, webhook, business, tiktok_state
):
    body = tiktok_state.envelope("comment.update", BUSINESS_ID, comment_content())
    response = webhook.post(body, {"TikTok-Signature": business.state.sign(body)})
    assert (response["statusCode"], json_body(response)["error"]["code"]) == (401, "unknown_client_key")


def test_a_delivery_signed_with_neither_secret_is_401(connected, webhook, business):
    response = deliver(webhook, business.state, "comment.update", comment_content(), secret="not-a-secret")
    assert (response["statusCode"], json_body(response)["error"]["code"]) == (401, "signature_invalid")


def test_an_eu_dm_without_text_is_acknowledged_and_makes_no_lead(connected, webhook, business, aws):
    eu = {k: v for k, v in message_content().items() if k not in ("text", "from", "from_user")}
    response = deliver(webhook, business.state, "im_receive_msg_eu", eu)
    assert json_body(response) == {"status": "ignored"}
    assert aws.items("LeadsTable") == []


# -- catch-up ------------------------------------------------------------------------------------------
def lead_rows(aws) -> list[dict[str, Any]]:
    return lead_items(aws.items("LeadsTable"))


def test_catch_up_adds_a_missed_comment_once_and_a_late_webhook_is_a_duplicate(
    connected, aws, business, webhook
):
    now = int(time.time())
    business.state.add_video(BUSINESS_ID, "7300000000000000001", now - 7200)
    business.state.add_comment(
        "7300000000000000001", "7321234567890123457", "How much is the orca plush?", now - 600
    )
    first = business_catchup.catch_up()
    assert (first.leads_created, first.duplicates, first.failed) == (1, 0, [])
    leads = lead_rows(aws)
    assert len(leads) == 1
    second = business_catchup.catch_up()
    assert (second.leads_created, second.duplicates) == (0, 1)
    assert lead_rows(aws) == leads
    # TikTok's webhook for the same comment arrives late: the same lead, nothing new.
    late = deliver(
        webhook,
        business.state,
        "comment.update",
        comment_content(7321234567890123457, timestamp=(now - 600) * 1000),
    )
    assert json_body(late) == {"status": "duplicate"}
    assert len(lead_rows(aws)) == 1
    assert record(connected).catchup_watermark == now - 600


def test_catch_up_skips_comments_older_than_the_watermark(connected, aws, business):
    now = int(time.time())
    business.state.add_video(BUSINESS_ID, "7300000000000000002", now - 10 * 86400)
    business.state.add_comment("7300000000000000002", "7321234567890120001", "old", now - 5 * 86400)
    business.state.add_comment("7300000000000000002", "7321234567890120002", "new", now - 60)
    report = business_catchup.catch_up()
    assert (report.comments_seen, report.leads_created) == (1, 1)


def test_catch_up_backs_off_and_stops_on_rate_limits(connected, aws, business):
    now = int(time.time())
    business.state.add_video(BUSINESS_ID, "7300000000000000003", now - 3600)
    business.state.fail_next("videos", code=40100, times=3)
    report = business_catchup.catch_up()
    assert report.rate_limited
    assert report.leads_created == 0
    assert business.state.calls["videos"] == 3  # the client's backoff, then the run stops
    assert record(connected).catchup_watermark is None


def test_catch_up_calls_per_integration(connected, aws, business, capsys):
    """What one run costs for one business integration with 2 videos and a comment each: the
    figures docs/business-accounts.md quotes."""
    now = int(time.time())
    for n in (1, 2):
        business.state.add_video(BUSINESS_ID, f"73000000000000001{n}", now - 3600)
        business.state.add_comment(f"73000000000000001{n}", f"73212345678901300{n}", "hi", now - 300)
    from tests.conftest import reset_process_caches

    reset_process_caches()  # a cold container
    business.requests.clear()
    with aws_calls() as log:
        report = business_catchup.catch_up()
    assert report.leads_created == 2
    tiktok_calls = sorted(business.requests)
    aws_ops = sorted(f"{s}.{o}" for s, o in log.calls)
    print(f"\ncatch-up, 2 videos x 1 new comment: TikTok {tiktok_calls}; AWS {aws_ops}")
    assert tiktok_calls == ["comments", "comments", "conversations", "conversations", "videos"]
    # The Business app, the person key (lead ids), the integration's tokens.
    assert aws_ops.count("secretsmanager.GetSecretValue") == 3
    assert aws_ops.count("dynamodb.Query") == 3  # by_catchup, then by_open_id per comment


# -- registration ----------------------------------------------------------------------------------
def _script():
    path = Path(__file__).resolve().parents[2] / "scripts" / "register_webhooks.py"
    spec = importlib.util.spec_from_file_location("register_webhooks_script", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_registering_the_webhook_url_twice_is_safe(aws, business, capsys, monkeypatch):
    from tests.support.deployment import CONTEXT

    url = "https://api.orcapulse.test/webhooks/tiktok"
    secret_id = CONTEXT.resources["TikTokBusinessAppSecret"]["Ref"]
    script = _script()
    assert script.main(["--url", url, "--secret-id", secret_id]) == 0
    assert business.state.webhooks == {"DIRECT_MESSAGE": url, "COMMENT": url}
    updates = business.state.calls["webhook_update"]
    assert updates == 2
    assert script.main(["--url", url, "--secret-id", secret_id]) == 0
    assert business.state.calls["webhook_update"] == 2  # nothing to change the second time
    out = capsys.readouterr().out
    assert "already registered" in out
    assert business.state.secret not in out


def test_registration_refuses_a_plain_http_url(aws, business):
    from tests.support.deployment import CONTEXT

    secret_id = CONTEXT.resources["TikTokBusinessAppSecret"]["Ref"]
    assert (
        _script().main(["--url", "http://api.orcapulse.test/webhooks/tiktok", "--secret-id", secret_id]) == 1
    )
    assert business.state.calls["webhook_update"] == 0
