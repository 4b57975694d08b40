"""The one policy for AWS failures (DESIGN §11), and the one place that reads an AWS error code.

- A failed condition is not a fault: the operation that asked for the condition turns it into its
  own answer (``None``, ``False``, "already there").
- Throttling, 5xx and transport timeouts are *transient*: ``TransientError`` (503), so the caller —
  TikTok, a browser, a scheduler — tries again and the retry finishes the work.
- Everything else — access denied, validation, a missing table or key, bad credentials — is a
  *configuration fault*: a retry cannot fix it. It is ``DependencyMisconfigured`` (500), logged with
  the AWS error code and counted as ``AwsConfigurationFault``, which has an alarm in the template.
  Were it a 503, a broken IAM policy would make TikTok retry for 72 hours while nothing alarms.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from orcapulse_tiktok.errors import DependencyMisconfigured, DomainError, TransientError
from orcapulse_tiktok.observability import logger, metrics

CONDITION_FAILED = "ConditionalCheckFailedException"
_THROTTLING = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "TransactionConflictException",
        "SlowDown",  # S3's throttling (HTTP 503)
    }
)
_SERVER_SIDE = frozenset(
    {
        "InternalServerError",
        "InternalFailure",
        "InternalServiceError",
        "InternalException",
        "InternalError",  # S3's
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
# Transport faults that a later attempt may not meet. A ReadTimeout may follow a write that took
# effect: every caller treats it as "maybe done" (see the compensations in the domain).
_TRANSPORT = (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError)


def _cause(exc: BaseException) -> BaseException:
    # PynamoDB wraps the botocore exception it got as ``cause``.
    return getattr(exc, "cause", None) or exc


def error_code(exc: BaseException) -> str | None:
    """The AWS error code behind ``exc`` (a ``ClientError`` or a PynamoDB exception wrapping one),
    or ``None`` for a transport fault. Safer than PynamoDB's ``cause_response_code``, which raises
    when the cause is a botocore timeout."""
    response = getattr(_cause(exc), "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error")
    code = error.get("Code") if isinstance(error, dict) else None
    return str(code) if code else None


def condition_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is a DynamoDB conditional write that found its condition false."""
    return error_code(exc) == CONDITION_FAILED


def _http_status(exc: BaseException) -> int:
    response = getattr(exc, "response", None)
    meta = response.get("ResponseMetadata") if isinstance(response, dict) else None
    status = meta.get("HTTPStatusCode") if isinstance(meta, dict) else None
    return status if isinstance(status, int) else 0


def is_transient(exc: BaseException) -> bool:
    """Whether a retry of the same call may succeed (throttling, 5xx, timeouts)."""
    cause = _cause(exc)
    if isinstance(cause, ClientError):
        code = error_code(cause)
        return code in _THROTTLING or code in _SERVER_SIDE or _http_status(cause) >= 500
    return isinstance(cause, _TRANSPORT)


def describe(exc: BaseException) -> str:
    """A log-safe name of the failure: the AWS error code, else the exception's type."""
    return error_code(exc) or type(_cause(exc)).__name__


def is_aws_failure(exc: BaseException) -> bool:
    """Whether ``exc`` came from an AWS call (botocore, or PynamoDB wrapping botocore)."""
    cause = _cause(exc)
    return isinstance(cause, ClientError | BotoCoreError)


def fault(action: str, exc: BaseException) -> DomainError:
    """Classify a failed AWS call made for ``action`` (``"put lead"``, ``"load token secret"``):
    log it with its AWS error code and return the domain error the caller raises."""
    code = describe(exc)
    if is_transient(exc):
        logger.warning("aws call failed; retryable", extra={"action": action, "aws_error": code})
        metrics.add_metric(name="AwsTransientFault", unit=MetricUnit.Count, value=1)
        return TransientError("A storage service is unavailable, try again")
    logger.error("aws call refused: configuration fault", extra={"action": action, "aws_error": code})
    metrics.add_metric(name="AwsConfigurationFault", unit=MetricUnit.Count, value=1)
    return DependencyMisconfigured("A storage service refused the call; the operators are alerted")
