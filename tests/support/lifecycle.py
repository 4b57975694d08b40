"""The merge and erasure routes, called with real-shaped HTTP API events, and the whole-storage
view the erasure tests grep (every table, every secret, read whole)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from tests.support.events import claims, http_event, json_body


def merge_event(target: str, body: Any, *, workspace: str | None = "ws-1") -> dict[str, Any]:
    """``POST /social-leads/{target}/merge`` with ``body`` (a dict, sent as JSON, or raw text)."""
    raw = body if isinstance(body, str) else json.dumps(body)
    return http_event(
        "POST",
        f"/social-leads/{target}/merge",
        route="/social-leads/{lead_id}/merge",
        path_parameters={"lead_id": target},
        headers={"content-type": "application/json"},
        body=raw,
        jwt_claims=claims(workspace=workspace),
    )


def erase_event(lead_id: str, *, workspace: str | None = "ws-1") -> dict[str, Any]:
    """``DELETE /social-leads/{lead_id}``."""
    return http_event(
        "DELETE",
        f"/social-leads/{lead_id}",
        route="/social-leads/{lead_id}",
        path_parameters={"lead_id": lead_id},
        jwt_claims=claims(workspace=workspace),
    )


class LeadWrites:
    """The lead_merge and lead_erase functions: ``(status, body or None)`` answers."""

    def __init__(self, load: Callable[[str], ModuleType], context: Any) -> None:
        self.load = load
        self.context = context

    def merge(self, target: str, lead_ids: Sequence[str] | Any, workspace: str = "ws-1") -> tuple[int, Any]:
        body = {"lead_ids": list(lead_ids)} if isinstance(lead_ids, list | tuple) else lead_ids
        response = self.load("lead_merge").lambda_handler(
            merge_event(target, body, workspace=workspace), self.context
        )
        return response["statusCode"], json_body(response)

    def erase(self, lead_id: str, workspace: str = "ws-1") -> tuple[int, Any]:
        response = self.load("lead_erase").lambda_handler(
            erase_event(lead_id, workspace=workspace), self.context
        )
        return response["statusCode"], json_body(response) if response.get("body") else None


def everything_stored(aws: Any) -> str:
    """Every item of every DynamoDB table and every secret value, as one text to grep."""
    ddb = aws.client("dynamodb")
    dump: list[Any] = []
    for table in ddb.list_tables()["TableNames"]:
        kwargs: dict[str, Any] = {"TableName": table}
        while True:
            page = ddb.scan(**kwargs)
            dump.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    sm = aws.client("secretsmanager")
    for secret in sm.list_secrets()["SecretList"]:
        dump.append(sm.get_secret_value(SecretId=secret["ARN"]).get("SecretString"))
    return json.dumps(dump)
