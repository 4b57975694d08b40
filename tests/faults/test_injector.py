"""The injector the matrix is built on: one ordered sequence for AWS and TikTok calls, the k-th
call failed the way its service fails, and expectations looked up so that a call site nobody
classified gets the path's default."""

from __future__ import annotations

import pytest
import requests
from botocore.exceptions import ClientError, ReadTimeoutError

from tests.faults.harness import Disconnect, Scenario
from tests.support.deployment import CONTEXT
from tests.support.faults import Call, external_calls
from tests.support.tiktok_fake import API

APP_SECRET = CONTEXT.resources["TikTokAppSecret"]["Ref"]
INTEGRATIONS = CONTEXT.resources["IntegrationsTable"]["Ref"]


def _calls(aws, tiktok) -> None:
    aws.client("secretsmanager").get_secret_value(SecretId=APP_SECRET)
    requests.post(API + "/v2/oauth/revoke/", data={}, timeout=5)
    aws.client("dynamodb").get_item(
        TableName=INTEGRATIONS, Key={"workspace_id": {"S": "w"}, "integration_id": {"S": "i"}}
    )


def test_aws_and_tiktok_calls_are_one_ordered_sequence_named_by_the_template(aws, tiktok):
    with external_calls(tiktok) as log:
        _calls(aws, tiktok)
    assert log.labels == [
        "secretsmanager.GetSecretValue(TikTokAppSecret)",
        "tiktok.revoke",
        "dynamodb.GetItem(IntegrationsTable)",
    ]
    assert log.injected is None


@pytest.mark.parametrize(
    ("k", "fault", "raised"),
    [(0, "throttle", ClientError), (0, "timeout", ReadTimeoutError), (2, "5xx", ClientError)],
)
def test_the_kth_aws_call_fails_the_way_aws_fails(aws, tiktok, k, fault, raised):
    with external_calls(tiktok, fail_at=k, fault=fault) as log, pytest.raises(raised) as failure:
        _calls(aws, tiktok)
    assert log.injected == log.calls[k]
    if raised is ClientError:
        code = failure.value.response["Error"]["Code"]
        assert code == {"throttle": "ThrottlingException", "5xx": "InternalServerError"}[fault]


def test_a_tiktok_fault_lasts_through_the_clients_retries_and_ends_at_the_next_other_call(aws, tiktok):
    with external_calls(tiktok, fail_at=0, fault="5xx") as log:
        answers = [requests.post(API + "/v2/oauth/revoke/", data={}, timeout=5).status_code for _ in range(3)]
        aws.client("secretsmanager").get_secret_value(SecretId=APP_SECRET)
        after = requests.post(API + "/v2/oauth/revoke/", data={}, timeout=5).status_code
    assert answers == [503, 503, 503]
    assert after != 503  # TikTok answers for itself again (here: the empty form is refused)
    assert log.injected == Call("tiktok", "tiktok", "revoke")


def test_unclassified_calls_get_the_paths_default():
    scenario: Scenario = Disconnect()
    calls = [
        Call("aws", "dynamodb", "GetItem", "IntegrationsTable"),
        Call("tiktok", "tiktok", "revoke"),
        Call("aws", "sqs", "SendMessage", "x"),
    ]
    assert scenario.expectation(calls, 0, "timeout") == scenario.default
    assert scenario.expectation(calls, 1, "timeout") == (200, "not_revoked")
    assert scenario.expectation(calls, 2, "timeout") == scenario.default
