"""The token service against the stateful TikTok fake, which really rotates: a used refresh token
is dead. Integrations are connected through the OAuth handlers; the product's clock is frozen and
moved to age tokens."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

import pytest
from orcapulse_tiktok import clock, token_schedule, tokens, vault
from orcapulse_tiktok.errors import TransientError
from orcapulse_tiktok.integrations import list_integrations
from orcapulse_tiktok.models.integration import Integration, integrations
from orcapulse_tiktok.observability import metrics

from tests.support.aws_calls import one_at_a_time
from tests.support.connect import connect
from tests.support.events import claims, http_event, json_body
from tests.support.faults import aws_calls

DAY = 86400
WORKSPACE = "ws-tokens"


class FrozenClock:
    def __init__(self) -> None:
        self.t = float(int(time.time()))

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def now(monkeypatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(clock, "now", lambda: frozen.t)
    return frozen


@pytest.fixture(autouse=True)
def fresh_metrics():
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def integration_id(aws, tiktok, load_function, lambda_context, now) -> str:
    return connect(load_function, lambda_context, tiktok, workspace=WORKSPACE, open_id="open-id-alpha")


def record(integration_id: str) -> Integration:
    return integrations().get(WORKSPACE, integration_id, consistent_read=True)


def item(aws, integration_id: str) -> dict[str, Any]:
    [found] = [i for i in aws.items("IntegrationsTable") if i["integration_id"]["S"] == integration_id]
    return cast(dict[str, Any], found)


def secret(aws, integration_id: str) -> dict[str, Any]:
    return cast(dict[str, Any], aws.token_secrets()[integration_id])


def refresh_calls(tiktok) -> int:
    def form(request: Any) -> str:
        body = request.body or ""
        return body.decode() if isinstance(body, bytes) else body

    return sum(1 for e, r in tiktok.requests if e == "token" and "grant_type=refresh_token" in form(r))


def alive(tiktok_state, *, access: str | None = None, refresh: str | None = None) -> bool:
    """Whether TikTok (the fake) still accepts the token."""
    if access is not None:
        return cast(bool, tiktok_state.user_info(f"Bearer {access}", "open_id")[0] == 200)
    entry = tiktok_state.refresh_tokens[refresh]
    return not entry["dead"]


def burn_refresh_token(tiktok_state, refresh_token: str) -> None:
    """Someone else uses the refresh token: TikTok rotates it, so ours is dead."""
    status, _ = tiktok_state.token(
        {
            "client_key": tiktok_state.client_key,
            "client_secret": tiktok_state.client_secret,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }
    )
    assert status == 200


def no_sleep(_seconds: float) -> None:
    return None


def test_fresh_token_is_returned_without_a_call(integration_id, aws, tiktok, now):
    stored = secret(aws, integration_id)
    now.advance(DAY - 3600)  # an hour left: still fresh for a caller

    assert tokens.access_token(record(integration_id)) == stored["access_token"]
    assert refresh_calls(tiktok) == 0
    assert secret(aws, integration_id) == stored


def test_expired_token_is_refreshed_once_and_rotation_is_kept(integration_id, aws, tiktok, tiktok_state, now):
    old = secret(aws, integration_id)
    now.advance(DAY + 60)

    token = tokens.access_token(record(integration_id))
    again = tokens.access_token(record(integration_id))

    assert token == again != old["access_token"]
    assert refresh_calls(tiktok) == 1
    new = secret(aws, integration_id)
    assert new["access_token"] == token
    assert new["access_expires_at"] == int(now.t) + DAY
    assert not alive(tiktok_state, refresh=old["refresh_token"])  # rotated away at TikTok
    assert alive(tiktok_state, refresh=new["refresh_token"])
    assert alive(tiktok_state, access=token)
    saved = item(aws, integration_id)
    assert saved["status"]["S"] == "active"
    assert int(saved["access_expires_at"]["N"]) == new["access_expires_at"]
    assert int(saved["refresh_due_at"]["N"]) == new["access_expires_at"] - 3600
    assert saved["refresh_failures"]["N"] == "0"
    assert "refresh_lease_owner" not in saved
    assert "refresh_lease_until" not in saved
    assert token not in str(aws.items("IntegrationsTable"))
    assert metrics.metric_set["TokenRefreshed"]["Value"] == [1.0]


def test_new_refresh_token_is_stored_before_the_access_token_is_used(
    integration_id, aws, tiktok, tiktok_state, now, monkeypatch
):
    now.advance(DAY + 60)
    with aws_calls() as log:
        real = tiktok_state.token

        def token(form: dict[str, str]):
            log.calls.append(("tiktok", form["grant_type"]))
            return real(form)

        monkeypatch.setattr(tiktok_state, "token", token)
        tokens.access_token(record(integration_id))

    ops = [op for _, op in log.calls]
    refresh = ops.index("refresh_token")
    lease = ops.index("UpdateItem")
    store = ops.index("PutSecretValue")
    assert lease < refresh < store < len(ops) - 1 - ops[::-1].index("UpdateItem")
    assert ops.count("PutSecretValue") == 1
    assert ops.count("refresh_token") == 1


def test_unstored_rotation_is_never_handed_out(integration_id, aws, tiktok, now):
    before = secret(aws, integration_id)
    now.advance(DAY + 60)
    failing_store = aws_calls(
        fail={"PutSecretValue": tokens.STORE_ATTEMPTS}, code="InternalServiceError", status=500
    )
    with failing_store, pytest.raises(TransientError):
        tokens.access_token(record(integration_id), sleep=no_sleep)
    assert secret(aws, integration_id) == before
    assert "refresh_lease_owner" not in item(aws, integration_id)
    assert metrics.metric_set["TokenRotationLost"]["Value"] == [1.0]


class Crash(BaseException):
    """The container dies (timeout, OOM): no except clause runs."""


def test_crash_between_vault_and_record_is_safe(integration_id, aws, tiktok, now, monkeypatch):
    now.advance(DAY + 60)
    real_store = vault.store

    def store_then_die(*args: Any, **kwargs: Any) -> None:
        real_store(*args, **kwargs)
        raise Crash

    monkeypatch.setattr(vault, "store", store_then_die)
    with pytest.raises(Crash):
        tokens.access_token(record(integration_id))
    monkeypatch.setattr(vault, "store", real_store)
    fresh = secret(aws, integration_id)
    stale = item(aws, integration_id)
    assert int(stale["access_expires_at"]["N"]) < fresh["access_expires_at"]  # the record lags
    assert "refresh_lease_owner" in stale  # the dead worker never released its lease

    # The next caller reads the vault, the truth for tokens: no second refresh.
    assert tokens.access_token(record(integration_id)) == fresh["access_token"]
    # Once the dead worker's lease expires, the scheduled run catches the record up without a call.
    now.advance(tokens.LEASE_SECONDS + 1)
    assert token_schedule.refresh_integration(WORKSPACE, integration_id) == "fresh"
    synced = item(aws, integration_id)
    assert int(synced["access_expires_at"]["N"]) == fresh["access_expires_at"]
    assert "refresh_lease_owner" not in synced
    assert refresh_calls(tiktok) == 1


def test_two_concurrent_refreshers_make_one_token_call(
    integration_id, aws, tiktok, tiktok_state, now, monkeypatch
):
    now.advance(DAY + 60)
    lease_seen_taken = threading.Event()
    real = tiktok_state.token

    def slow_token(form: dict[str, str]):
        # The lease holder stays inside TikTok's token call until the other caller found the
        # lease taken, so the two really overlap.
        if form.get("grant_type") == "refresh_token":
            lease_seen_taken.wait(5)
        return real(form)

    def waiting(_seconds: float) -> None:
        lease_seen_taken.set()
        time.sleep(0.1)

    monkeypatch.setattr(tiktok_state, "token", slow_token)
    results: list[str] = []
    errors: list[BaseException] = []

    def caller() -> None:
        try:
            results.append(tokens.access_token(record(integration_id), sleep=waiting))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=caller) for _ in range(2)]
    # DynamoDB applies each conditional write atomically; in-process moto does not serialize
    # concurrent requests, so give it DynamoDB's per-request atomicity.
    with one_at_a_time():
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)

    assert errors == []
    assert lease_seen_taken.is_set()
    assert len(results) == 2
    assert results[0] == results[1] == secret(aws, integration_id)["access_token"]
    assert refresh_calls(tiktok) == 1
    assert alive(tiktok_state, access=results[0])


def test_a_held_lease_is_waited_for_not_broken(integration_id, aws, tiktok, now):
    now.advance(DAY + 60)
    record(integration_id).update(
        actions=[
            Integration.refresh_lease_owner.set("another-container"),
            Integration.refresh_lease_until.set(int(now.t) + 20),
        ]
    )
    pauses: list[float] = []

    with pytest.raises(TransientError):
        tokens.access_token(record(integration_id), sleep=pauses.append)
    assert len(pauses) == tokens.LEASE_WAIT_ATTEMPTS
    assert refresh_calls(tiktok) == 0

    # A lease whose holder died expires; the next caller takes it over.
    now.advance(21)
    assert tokens.access_token(record(integration_id), sleep=no_sleep)
    assert refresh_calls(tiktok) == 1


def test_invalid_grant_marks_needs_reauth(integration_id, aws, tiktok, tiktok_state, now):
    stored = secret(aws, integration_id)
    burn_refresh_token(tiktok_state, stored["refresh_token"])
    now.advance(DAY + 60)

    with pytest.raises(tokens.ReauthRequired) as raised:
        tokens.access_token(record(integration_id))
    assert raised.value.code == "integration_needs_reauth"

    saved = item(aws, integration_id)
    assert saved["status"]["S"] == "needs_reauth"
    assert "refresh_bucket" not in saved  # off the refresh schedule (sparse index)
    assert "refresh_due_at" not in saved
    assert "refresh_lease_owner" not in saved
    assert secret(aws, integration_id) == stored  # kept: a reconnect overwrites it
    assert metrics.metric_set["IntegrationNeedsReauth"]["Value"] == [1.0]
    [shown] = list_integrations(WORKSPACE)
    assert shown["status"] == "needs_reauth"
    # Further callers learn it without asking TikTok again.
    with pytest.raises(tokens.ReauthRequired):
        tokens.access_token(record(integration_id))
    assert refresh_calls(tiktok) == 1


def test_expired_refresh_token_needs_reauth_without_a_call(integration_id, aws, tiktok, tiktok_state, now):
    now.advance(tiktok_state.refresh_expires_in + 1)
    with pytest.raises(tokens.ReauthRequired):
        tokens.access_token(record(integration_id))
    assert item(aws, integration_id)["status"]["S"] == "needs_reauth"
    assert refresh_calls(tiktok) == 0


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda s: s.fail_next("token", 503, {}), id="5xx"),
        pytest.param(
            lambda s: s.fail_next(
                "token", 429, {"error": "rate_limit_exceeded", "error_description": "slow down"}
            ),
            id="429",
        ),
        pytest.param(lambda s: s.timeout_next("token"), id="timeout"),
    ],
)
def test_transient_failures_keep_tokens_and_back_off(integration_id, aws, tiktok, tiktok_state, now, fault):
    before = secret(aws, integration_id)
    now.advance(DAY + 60)

    for failures in (1, 2):
        fault(tiktok_state)
        with pytest.raises(TransientError):
            tokens.access_token(record(integration_id))
        saved = item(aws, integration_id)
        assert saved["status"]["S"] == "active"  # never needs_reauth for a transient error
        assert saved["refresh_failures"]["N"] == str(failures)
        assert int(saved["refresh_due_at"]["N"]) == int(now.t) + tokens.BACKOFF_BASE_SECONDS * 2 ** (
            failures - 1
        )
        assert saved["refresh_bucket"]["S"] == "tiktok"
        assert "refresh_lease_owner" not in saved
        assert secret(aws, integration_id) == before
        assert alive(tiktok_state, refresh=before["refresh_token"])

    token = tokens.access_token(record(integration_id))
    assert token == secret(aws, integration_id)["access_token"] != before["access_token"]
    assert item(aws, integration_id)["refresh_failures"]["N"] == "0"
    assert metrics.metric_set["TokenRefreshFailed"]["Value"] == [1.0, 1.0]


def test_reconnect_clears_needs_reauth(
    integration_id, aws, tiktok, tiktok_state, now, load_function, lambda_context
):
    burn_refresh_token(tiktok_state, secret(aws, integration_id)["refresh_token"])
    now.advance(DAY + 60)
    with pytest.raises(tokens.ReauthRequired):
        tokens.access_token(record(integration_id))

    again = connect(load_function, lambda_context, tiktok, workspace=WORKSPACE, open_id="open-id-alpha")

    assert again == integration_id
    saved = item(aws, integration_id)
    assert saved["status"]["S"] == "active"
    assert saved["refresh_bucket"]["S"] == "tiktok"
    assert saved["refresh_failures"]["N"] == "0"
    [shown] = list_integrations(WORKSPACE)
    assert shown["status"] == "active"
    reconnected = secret(aws, integration_id)
    assert alive(tiktok_state, refresh=reconnected["refresh_token"])
    assert tokens.access_token(record(integration_id)) == reconnected["access_token"]
    # ... and the reconnected grant keeps refreshing.
    now.advance(DAY + 60)
    assert tokens.access_token(record(integration_id)) != reconnected["access_token"]
    assert refresh_calls(tiktok) == 2


def test_an_inactive_integration_gets_no_token(integration_id, aws, tiktok, now):
    record(integration_id).update(actions=[Integration.status.set("revoked")])
    with pytest.raises(tokens.ReauthRequired):
        tokens.access_token(record(integration_id))
    assert refresh_calls(tiktok) == 0


# -- disconnect goes through the token service ------------------------------------------------------
def disconnect(load_function, lambda_context, integration_id: str) -> dict[str, Any]:
    module = load_function("disconnect")
    event = http_event(
        "DELETE",
        f"/integrations/tiktok/{integration_id}",
        route="/integrations/tiktok/{integration_id}",
        path_parameters={"integration_id": integration_id},
        jwt_claims=claims(workspace=WORKSPACE),
    )
    return cast(dict[str, Any], module.lambda_handler(event, lambda_context))


def latest_access_token(tiktok_state) -> str:
    return cast(str, [t for t in tiktok_state.issued if t.startswith("act.")][-1])


def test_disconnect_revokes_with_a_refreshed_token_when_the_stored_one_expired(
    integration_id, aws, tiktok, tiktok_state, now, load_function, lambda_context
):
    expired = secret(aws, integration_id)["access_token"]
    now.advance(DAY + 60)

    response = disconnect(load_function, lambda_context, integration_id)

    assert response["statusCode"] == 200
    assert json_body(response) == {"integration_id": integration_id, "revoked": True}
    assert refresh_calls(tiktok) == 1
    live = latest_access_token(tiktok_state)
    assert live != expired
    assert tiktok_state.access_tokens[live]["revoked"]
    assert aws.token_secrets() == {}
    assert aws.items("IntegrationsTable") == []


def test_disconnect_with_a_dead_grant_still_completes(
    integration_id, aws, tiktok, tiktok_state, now, load_function, lambda_context
):
    burn_refresh_token(tiktok_state, secret(aws, integration_id)["refresh_token"])
    now.advance(DAY + 60)

    response = disconnect(load_function, lambda_context, integration_id)

    assert response["statusCode"] == 200
    assert json_body(response) == {"integration_id": integration_id, "revoked": False}
    assert tiktok.calls["revoke"] == 0
    assert aws.token_secrets() == {}
    assert aws.items("IntegrationsTable") == []


def test_disconnect_falls_back_to_an_unexpired_token_when_refresh_is_down(
    integration_id, aws, tiktok, tiktok_state, now, load_function, lambda_context
):
    stored = secret(aws, integration_id)["access_token"]
    now.advance(DAY - 100)  # too close to expiry to hand out, still good for a revoke
    tiktok_state.fail_next("token", 503, {})

    response = disconnect(load_function, lambda_context, integration_id)

    assert json_body(response) == {"integration_id": integration_id, "revoked": True}
    assert tiktok_state.access_tokens[stored]["revoked"]
    assert aws.items("IntegrationsTable") == []
