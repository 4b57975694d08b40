"""Disconnect: a real revoke at TikTok, then the secret and the record go — also when the revoke
fails, and a failed step can be retried to completion."""

from __future__ import annotations

import json

import pytest

from tests.support.connect import connect
from tests.support.events import claims, http_event, json_body
from tests.support.faults import aws_calls

ROUTE = "/integrations/tiktok/{integration_id}"


@pytest.fixture
def connected(load_function, lambda_context, tiktok, aws):
    return connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")


@pytest.fixture
def delete(load_function, lambda_context, aws):
    module = load_function("disconnect")

    def call(integration_id, jwt_claims=None):
        event = http_event(
            "DELETE",
            f"/integrations/tiktok/{integration_id}",
            route=ROUTE,
            path_parameters={"integration_id": integration_id},
            jwt_claims=jwt_claims if jwt_claims is not None else claims(workspace="ws-1"),
        )
        return module.lambda_handler(event, lambda_context)

    return call


def test_disconnect_revokes_and_removes_everything(connected, delete, tiktok, aws):
    response = delete(connected)
    assert response["statusCode"] == 200
    assert json_body(response) == {"integration_id": connected, "revoked": True}
    assert tiktok.state.revoked == ["open-id-alpha"]
    assert aws.items("IntegrationsTable") == []
    assert aws.token_secrets() == {}
    second = delete(connected)
    assert second["statusCode"] == 404
    assert json_body(second)["error"]["code"] == "integration_not_found"


def test_other_workspace_gets_404_and_changes_nothing(connected, delete, tiktok, aws):
    response = delete(connected, claims(workspace="ws-other"))
    assert response["statusCode"] == 404
    assert len(aws.items("IntegrationsTable")) == 1
    assert list(aws.token_secrets()) == [connected]
    assert tiktok.calls["revoke"] == 0


@pytest.mark.parametrize(
    "integration_id", ["tt_000000000000000000000000", "nope", "x" * 3000, "TT_0C6C829260B30D1254B1F075"]
)
def test_unknown_or_malformed_id_is_404(delete, aws, integration_id):
    response = delete(integration_id)
    assert response["statusCode"] == 404
    assert json_body(response)["error"]["code"] == "integration_not_found"


def test_no_authorizer_is_401_and_no_workspace_is_403(connected, delete, load_function, lambda_context):
    module = load_function("disconnect")
    event = http_event(
        "DELETE",
        f"/integrations/tiktok/{connected}",
        route=ROUTE,
        path_parameters={"integration_id": connected},
    )
    assert module.lambda_handler(event, lambda_context)["statusCode"] == 401
    assert delete(connected, claims(workspace=None))["statusCode"] == 403


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "body": {}, "times": 3},
        {"status": 400, "body": {"error": "invalid_request", "error_description": "bad", "log_id": "LOG-42"}},
    ],
)
def test_failed_revoke_still_disconnects(connected, delete, tiktok, aws, logs, fault):
    tiktok.state.fail_next("revoke", **fault)
    response = delete(connected)
    assert response["statusCode"] == 200
    assert json_body(response) == {"integration_id": connected, "revoked": False}
    assert aws.items("IntegrationsTable") == []
    assert aws.token_secrets() == {}
    warnings = [json.loads(line) for line in logs if "revoke failed" in line]
    assert warnings
    assert all("tiktok_error" in w for w in warnings)
    if "log_id" in fault["body"]:
        assert warnings[0]["tiktok_log_id"] == "LOG-42"


def test_revoke_timeout_still_disconnects(connected, delete, tiktok, aws):
    tiktok.state.timeout_next("revoke", times=3)
    assert json_body(delete(connected)) == {"integration_id": connected, "revoked": False}
    assert aws.items("IntegrationsTable") == []


def test_revoke_failure_is_counted_as_a_metric(connected, delete, tiktok, capsys):
    tiktok.state.fail_next("revoke", status=500, times=3)
    delete(connected)
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("RevokeFailed") == [1.0] for m in metrics)


def test_secret_delete_failure_is_503_and_a_retry_completes(connected, delete, tiktok, aws):
    with aws_calls(fail={"DeleteSecret": 1}, code="InternalServiceError", status=500):
        response = delete(connected)
    assert response["statusCode"] == 503
    assert json_body(response)["error"]["code"] == "temporarily_unavailable"
    assert len(aws.items("IntegrationsTable")) == 1  # no record lost while its secret remains
    retry = delete(connected)
    assert retry["statusCode"] == 200
    assert aws.items("IntegrationsTable") == []
    assert aws.token_secrets() == {}


def test_record_delete_failure_is_503_and_a_retry_completes(connected, delete, tiktok, aws):
    with aws_calls(fail={"DeleteItem": 1}, code="ProvisionedThroughputExceededException"):
        assert delete(connected)["statusCode"] == 503
    assert aws.token_secrets() == {}
    retry = delete(connected)
    assert json_body(retry) == {"integration_id": connected, "revoked": False}
    assert aws.items("IntegrationsTable") == []
