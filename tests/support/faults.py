"""Fault injection at the product's two outside boundaries, AWS and TikTok.

``aws_calls(fail={op: n})`` makes the n-th call of an AWS operation fail. ``external_calls()``
records every outside call in one ordered sequence — each AWS API call (boto3's, PynamoDB's and
Powertools' clients alike) and each HTTP call to TikTok — and ``external_calls(fail_at=k,
fault=...)`` makes the k-th of them fail, so a fault matrix can be generated from a recorded
baseline: a new call site in the product is a new row without anyone writing it down.

What a fault stands for:

- AWS faults are raised where botocore's own retry loop cannot see them (a ``before-call`` hook of
  ``tests.support.aws_calls``), so one injected failure is a call that still failed after the SDK's
  retries: a throttling or 5xx ``ClientError`` with the service's real error code, or a botocore
  timeout.
- TikTok faults persist through the TikTok client's retry loop: after the k-th call fails, further
  attempts at the same endpoint fail too, until the product calls something else. So a fault on
  an idempotent TikTok call reaches the product's error handling instead of being absorbed by the
  client's retries.
- Retries the product itself makes (a second vault write, a fallback read) are new calls and
  succeed: the matrix checks that such a retry really completes the work.
- ``lost`` is a call that *took effect* but whose answer never came back (a read timeout after
  the write): the product sees a timeout, while AWS or TikTok did what was asked. Every
  compensation must treat such an unknown outcome as "maybe done".
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from orcapulse_local.tiktok_state import Fault as TikTokFault
from tests.support.aws_calls import Answer, AwsCall, Hook, intercepting
from tests.support.deployment import CONTEXT


@dataclass
class CallLog(Hook):
    """Every AWS call made while recording: (service, operation); the first ``fail[op]`` calls of
    an operation raise ``code``."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)
    code: str = "ThrottlingException"
    status: int = 400

    def operations(self, service: str | None = None) -> list[str]:
        return [op for svc, op in self.calls if service is None or svc == service]

    def before(self, call: AwsCall) -> None:
        self.calls.append((call.service, call.operation))
        if self.fail.get(call.operation, 0) > 0:
            self.fail[call.operation] -= 1
            raise client_error(self.code, "injected fault", self.status, call.operation)


@contextlib.contextmanager
def aws_calls(
    fail: dict[str, int] | None = None, code: str = "ThrottlingException", status: int = 400
) -> Iterator[CallLog]:
    """Record AWS calls; ``fail={"UpdateItem": 1}`` makes the first UpdateItem raise ``code``."""
    with intercepting(CallLog(fail=dict(fail or {}), code=code, status=status)) as log:
        yield log


# -- one ordered sequence of outside calls ------------------------------------------------------------
AWS_FAULTS = ("throttle", "5xx", "timeout", "lost")
TIKTOK_FAULTS = ("5xx", "timeout", "lost")
LOST = "lost"

# The error codes each service really answers with when it throttles or fails internally.
_THROTTLE_CODES = {
    "dynamodb": "ThrottlingException",
    "secretsmanager": "ThrottlingException",
    "s3": "SlowDown",
}
_INTERNAL_CODES = {
    "dynamodb": ("InternalServerError", 500),
    "secretsmanager": ("InternalServiceError", 500),
    "events": ("InternalException", 500),
    "s3": ("InternalError", 500),
}


@dataclass(frozen=True)
class Call:
    """One outside call. ``target`` names what it touched as the template does (``LeadsTable``,
    ``TikTokAppSecret``, ``token secret``) or TikTok's endpoint, so labels are stable across runs."""

    system: str  # "aws" or "tiktok"
    service: str  # dynamodb, secretsmanager, events, tiktok
    operation: str  # PutItem, GetSecretValue, token, user_info, revoke
    target: str = ""

    @property
    def label(self) -> str:
        name = f"{self.service}.{self.operation}"
        return f"{name}({self.target})" if self.target else name

    @property
    def faults(self) -> tuple[str, ...]:
        return AWS_FAULTS if self.system == "aws" else TIKTOK_FAULTS

    def __str__(self) -> str:
        return self.label


def _logical_names() -> dict[str, str]:
    names = {}
    for logical, ref in CONTEXT.resources.items():
        value = ref.get("Ref") if isinstance(ref, dict) else None
        if isinstance(value, str):
            names[value] = logical
    return names


def _token_prefix() -> str:
    return CONTEXT.resources["TikTokAppSecret"]["Ref"].rsplit("/", 1)[0] + "/tokens/"


def aws_target(service: str, params: Mapping[str, Any]) -> str:
    """What an AWS call touches, named by the template's logical ids."""
    names = _logical_names()
    if service in ("dynamodb", "dynamodbstreams"):
        table = str(params.get("TableName", ""))
        target = names.get(table, table)
        index = params.get("IndexName")
        return f"{target}/{index}" if index else target
    if service == "secretsmanager":
        secret = str(params.get("SecretId") or params.get("Name") or "")
        if secret.startswith(_token_prefix()):
            return "token secret"
        return names.get(secret, secret)
    if service == "events":
        buses = {str(e.get("EventBusName", "default")) for e in params.get("Entries", [])}
        return ",".join(sorted(names.get(b, b) for b in buses))
    if service == "s3":
        bucket = str(params.get("Bucket", ""))
        return names.get(bucket, bucket)
    return ""


def client_error(code: str, message: str, status: int, operation_name: str) -> ClientError:
    """The ``ClientError`` botocore raises when AWS answers ``status`` with error ``code``."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "HTTPHeaders": {},
                "RequestId": "INJECTED",
                "HostId": "",
                "RetryAttempts": 0,
            },
        },
        operation_name,
    )


def aws_fault(call: Call, fault: str, operation_name: str) -> Exception:
    """The exception AWS (or botocore) raises for ``fault`` on ``call``."""
    if fault == "throttle":
        code = _THROTTLE_CODES.get(call.service, "ThrottlingException")
        # S3 throttles with HTTP 503 SlowDown; the others with a 400.
        return client_error(code, "Rate exceeded", 503 if call.service == "s3" else 400, operation_name)
    if fault == "5xx":
        code, status = _INTERNAL_CODES.get(call.service, ("ServiceUnavailable", 503))
        return client_error(code, "injected internal failure", status, operation_name)
    if fault in ("timeout", LOST):
        return ReadTimeoutError(endpoint_url=f"https://{call.service}.us-east-1.amazonaws.com/")
    if fault == "connect-timeout":
        return ConnectTimeoutError(endpoint_url=f"https://{call.service}.us-east-1.amazonaws.com/")
    if fault == "unreachable":
        return EndpointConnectionError(endpoint_url=f"https://{call.service}.us-east-1.amazonaws.com/")
    raise ValueError(f"unknown AWS fault {fault!r}")


def tiktok_fault(endpoint: str, fault: str) -> TikTokFault:
    """TikTok failing as its docs describe: a 5xx with its error envelope, or no answer in time."""
    if fault == "timeout":
        return TikTokFault(0, timeout=True)
    if fault == LOST:
        return TikTokFault(0, lost=True)
    if fault != "5xx":
        raise ValueError(f"unknown TikTok fault {fault!r}")
    body: dict[str, Any]
    if endpoint == "user_info":
        body = {"data": {}, "error": {"code": "internal_error", "message": "injected", "log_id": "INJECTED"}}
    else:
        body = {"error": "internal_error", "error_description": "injected", "log_id": "INJECTED"}
    return TikTokFault(503, body)


def business_fault(fault: str) -> TikTokFault:
    """TikTok API for Business failing: no answer in time, or its system error — HTTP 200 with a
    non-zero ``code``, as every Business API error comes."""
    if fault != "5xx":
        return tiktok_fault("business", fault)
    return TikTokFault(200, {"code": 50000, "message": "System error", "request_id": "INJECTED", "data": {}})


@dataclass
class ExternalCalls(Hook):
    """The ordered outside calls of one run, and the fault injected into it (if any)."""

    fail_at: int | None = None
    fault: str | None = None
    calls: list[Call] = field(default_factory=list)
    injected: Call | None = None
    _down: str | None = None  # the TikTok endpoint that stays down through the client's retries
    _lost: AwsCall | None = None  # the AWS call whose answer is to be lost
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next(self, call: Call) -> bool:
        """Record ``call``; whether it must fail."""
        with self._lock:
            index = len(self.calls)
            self.calls.append(call)
            if call.system == "tiktok" and self._down == call.operation:
                return True
            self._down = None
            if index != self.fail_at:
                return False
            self.injected = call
            if call.system == "tiktok" and self.fault != LOST:
                self._down = call.operation
            return True

    def before(self, aws_call: AwsCall) -> None:
        call = Call(
            "aws", aws_call.service, aws_call.operation, aws_target(aws_call.service, aws_call.params)
        )
        if self._next(call):
            assert self.fault is not None
            if self.fault == LOST:
                self._lost = aws_call
                return
            raise aws_fault(call, self.fault, aws_call.operation)

    def after(self, aws_call: AwsCall, answer: Answer) -> None:
        if aws_call is self._lost:
            # The call reached AWS and was carried out; whatever it answered is lost on the way
            # back, an error included (a refused write took no effect, but it is lost too).
            assert self.injected is not None
            raise aws_fault(self.injected, LOST, aws_call.operation)

    def tiktok(self, endpoint: str) -> TikTokFault | None:
        if self._next(Call("tiktok", "tiktok", endpoint)):
            assert self.fault is not None
            return tiktok_fault(endpoint, self.fault)
        return None

    def business(self, endpoint: str) -> TikTokFault | None:
        if self._next(Call("tiktok", "business", endpoint)):
            assert self.fault is not None
            return business_fault(self.fault)
        return None

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.calls]


@contextlib.contextmanager
def external_calls(
    tiktok: Any | None = None,
    *,
    fail_at: int | None = None,
    fault: str | None = None,
    business: Any | None = None,
    ads: Any | None = None,
) -> Iterator[ExternalCalls]:
    """Record every outside call made inside the block (AWS always; TikTok when ``tiktok``, the
    test's ``TikTokFake``, is given, and TikTok API for Business, labelled ``business.*``, when
    ``business``, its ``BusinessFake``, is — the Marketing API of lead forms, ``business.ads.*``,
    when ``ads``, its ``AdsFake``, is); with ``fail_at``, make that call (0-based) fail with
    ``fault`` (``throttle``, ``5xx``, ``timeout`` or ``lost``; TikTok calls take ``5xx``,
    ``timeout`` or ``lost``)."""
    log = ExternalCalls(fail_at=fail_at, fault=fault)
    hooks = ((tiktok, log.tiktok), (business, log.business), (ads, log.business))
    fakes = [(f, hook) for f, hook in hooks if f is not None]
    previous = [f.interceptor for f, _ in fakes]
    for fake, hook in fakes:
        fake.interceptor = hook
    try:
        with intercepting(log):
            yield log
    finally:
        for (fake, _), before in zip(fakes, previous, strict=True):
            fake.interceptor = before
