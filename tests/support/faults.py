"""Fault injection at the AWS boundary: make the n-th call of an AWS operation fail the way AWS
fails (a ClientError with a real error code), whichever client — boto3 or PynamoDB's — makes it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore.client import BaseClient
from botocore.exceptions import ClientError

_real_call = BaseClient._make_api_call


@dataclass
class CallLog:
    """Every AWS call made while recording: (service, operation)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def operations(self, service: str | None = None) -> list[str]:
        return [op for svc, op in self.calls if service is None or svc == service]


@contextlib.contextmanager
def aws_calls(
    fail: dict[str, int] | None = None, code: str = "ThrottlingException", status: int = 400
) -> Iterator[CallLog]:
    """Record AWS calls; ``fail={"UpdateItem": 1}`` makes the first UpdateItem raise ``code``."""
    log = CallLog()
    remaining = dict(fail or {})

    def call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        log.calls.append((service, operation_name))
        if remaining.get(operation_name, 0) > 0:
            remaining[operation_name] -= 1
            raise ClientError(
                {
                    "Error": {"Code": code, "Message": "injected fault"},
                    "ResponseMetadata": {"HTTPStatusCode": status},
                },
                operation_name,
            )
        return _real_call(self, operation_name, api_params)

    with mock.patch.object(BaseClient, "_make_api_call", call):
        yield log
