"""One policy for AWS failures (DESIGN §11): throttling, 5xx and timeouts are 503 (try again);
access denied, validation and missing resources are configuration faults — 500, logged with the
AWS error code, counted as ``AwsConfigurationFault``, which the template alarms on. A broken IAM
policy must never make TikTok retry for 72 hours while nothing alarms."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError
from orcapulse_tiktok.data import faults
from orcapulse_tiktok.errors import DependencyMisconfigured, TransientError

from tests.support.deployment import TEMPLATE
from tests.support.events import claims, http_event, json_body
from tests.support.faults import aws_calls
from tests.support.webhooks import comment_content, status_of


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}},  # type: ignore[typeddict-item]  # botocore-stubs require every ResponseMetadata key; botocore reads only those present
        "PutItem",
    )


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (_client_error("ThrottlingException", 400), True),
        (_client_error("ProvisionedThroughputExceededException", 400), True),
        (_client_error("InternalServerError", 500), True),
        (_client_error("SomethingNew", 503), True),  # any 5xx
        (ReadTimeoutError(endpoint_url="https://dynamodb"), True),
        (EndpointConnectionError(endpoint_url="https://dynamodb"), True),
        (_client_error("AccessDeniedException", 400), False),
        (_client_error("ValidationException", 400), False),
        (_client_error("ResourceNotFoundException", 400), False),
        (_client_error("UnrecognizedClientException", 400), False),
        (NoCredentialsError(), False),
    ],
)
def test_each_failure_is_classified_once(exc, transient):
    error = faults.fault("test call", exc)
    assert isinstance(error, TransientError) is transient
    assert isinstance(error, DependencyMisconfigured) is not transient
    assert error.status == (503 if transient else 500)


def _metrics(out: str) -> set[str]:
    names: set[str] = set()
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            names.update(m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"])
    return names


def test_a_broken_iam_permission_is_a_500_with_an_alarmed_metric_not_a_503(
    webhook, alpha, aws, capsys, caplog
):
    capsys.readouterr()
    with aws_calls(fail={"PutItem": 1}, code="AccessDeniedException", status=400):
        response = webhook.deliver("comment.update", "open-id-alpha", comment_content())
    assert status_of(response) == (500, "dependency_misconfigured")
    out = capsys.readouterr().out
    assert "AwsConfigurationFault" in _metrics(out)
    [refused] = [r for r in caplog.records if r.getMessage() == "aws call refused: configuration fault"]
    assert refused.levelname == "ERROR"
    assert refused.aws_error == "AccessDeniedException"  # type: ignore[attr-defined]
    # A delivery's first PutItem is the archive's: one not safely kept is never acknowledged.
    assert refused.action == "keep delivery"  # type: ignore[attr-defined]
    assert aws.items("LeadsTable") == aws.items("DeliveriesTable") == []  # nothing half-written

    # Throttling on the same call is only a retry.
    with aws_calls(fail={"PutItem": 1}, code="ThrottlingException", status=400):
        response = webhook.deliver("comment.update", "open-id-alpha", comment_content())
    assert status_of(response) == (503, "temporarily_unavailable")
    assert "AwsConfigurationFault" not in _metrics(capsys.readouterr().out)


def test_a_missing_table_on_the_read_api_is_a_500_not_a_retry(load_function, lambda_context, aws):
    handler = load_function("leads_query").lambda_handler
    with aws_calls(fail={"Query": 1}, code="ResourceNotFoundException", status=400):
        response = handler(http_event("GET", "/social-leads", jwt_claims=claims()), lambda_context)
    assert response["statusCode"] == 500
    assert json_body(response)["error"]["code"] == "dependency_misconfigured"


def test_the_template_alarms_on_configuration_faults():
    alarms = [
        r["Properties"]
        for r in TEMPLATE["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"].get("MetricName") == "AwsConfigurationFault"
    ]
    assert len(alarms) == 1
    [alarm] = alarms
    assert alarm["Namespace"] == "OrcaPulse/TikTok"
    assert alarm["Threshold"] == 0
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
