"""The lifecycle's ways in, as tests drive them: ``PATCH /social-leads/{lead_id}`` through the
lead_update function and the merge and erasure routes with real-shaped HTTP API events, pipeline
decisions as EventBridge delivers them to the lead_decisions function, and the whole-storage view
the erasure tests grep (every table, every secret, read whole)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

from tests.support.events import claims, http_event, json_body
from tests.support.leads import ReadApi

QUALIFIED, ROUTED, DISMISSED = "SocialLeadQualified", "SocialLeadRouted", "SocialLeadDismissed"


class Answer(NamedTuple):
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None


def patch_event(
    lead_id: str,
    body: Any,
    *,
    if_match: str | None,
    workspace: str = "ws-1",
    user: str = "user-1",
    raw: str | None = None,
) -> dict[str, Any]:
    """One PATCH request; ``raw`` sends that text as the body instead of ``body`` as JSON."""
    headers = {"content-type": "application/json"}
    if if_match is not None:
        headers["if-match"] = if_match
    return http_event(
        "PATCH",
        f"/social-leads/{lead_id}",
        route="/social-leads/{lead_id}",
        path_parameters={"lead_id": lead_id},
        headers=headers,
        body=json.dumps(body) if raw is None else raw,
        jwt_claims=claims(user=user, workspace=workspace),
    )


class LeadUpdates:
    """The lead_update function (PATCH) and the leads_query function (GET, for the ETag)."""

    def __init__(self, update: ModuleType, query: ModuleType, context: Any) -> None:
        self.update, self.query, self.context = update, query, context

    def get(self, lead_id: str, *, workspace: str = "ws-1") -> Answer:
        return _answer(ReadApi(self.query, self.context).get(f"/social-leads/{lead_id}", workspace=workspace))

    def etag(self, lead_id: str, *, workspace: str = "ws-1") -> str:
        answer = self.get(lead_id, workspace=workspace)
        assert answer.status == 200, answer
        return answer.headers["ETag"]

    def patch(
        self,
        lead_id: str,
        body: Any,
        *,
        if_match: str | None = "current",
        workspace: str = "ws-1",
        user: str = "user-1",
        raw: str | None = None,
    ) -> Answer:
        """PATCH the lead; ``if_match="current"`` sends the ETag a GET gives right now."""
        if if_match == "current":
            if_match = self.etag(lead_id, workspace=workspace)
        event = patch_event(lead_id, body, if_match=if_match, workspace=workspace, user=user, raw=raw)
        return _answer(self.update.lambda_handler(event, self.context))


def _answer(response: dict[str, Any]) -> Answer:
    return Answer(response["statusCode"], json_body(response), dict(response.get("headers") or {}))


def decision_event(
    detail_type: str, detail: Any, *, source: str = "orcapulse.qualification"
) -> dict[str, Any]:
    """A pipeline decision as EventBridge delivers it to a rule's Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": "2026-11-25T08:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def decision(lead_id: str, decided_at: str, *, workspace: str = "ws-1", **extra: Any) -> dict[str, Any]:
    """A decision's ``detail``."""
    return {"workspace_id": workspace, "lead_id": lead_id, "decided_at": decided_at, **extra}


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


def everything_stored(aws: Any, *, but: str | None = None) -> str:
    """Every item of every DynamoDB table (but the tables whose name contains ``but``) and every
    secret value, as one text to grep."""
    ddb = aws.client("dynamodb")
    dump: list[Any] = []
    for table in ddb.list_tables()["TableNames"]:
        if but and but in table:
            continue
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
    # Binary attributes (the delivery archive's raw bodies) are read as the text they carry.
    return json.dumps(dump, default=lambda value: bytes(value).decode("utf-8", "replace"))
