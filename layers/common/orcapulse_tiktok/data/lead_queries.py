"""The read API's listings of the leads table (docs/leads-storage.md, "Indexes"): a workspace's
people by last activity, and a person's interactions by time — one Query per page, each on its
index, with what it read and what it cost."""

from __future__ import annotations

from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok.data import faults
from orcapulse_tiktok.data.clients import client
from orcapulse_tiktok.models.lead import Interaction, Lead, lead_pk, leads

ACTIVITY_INDEX = Lead.by_activity.Meta.index_name
TIME_INDEX = Interaction.by_time.Meta.index_name


class Page(NamedTuple):
    """One Query's answer: raw items, where it stopped, and what it cost."""

    items: list[dict[str, Any]]
    last_key: dict[str, Any] | None
    evaluated: int
    capacity_units: float


def query_activity(
    workspace_id: str,
    *,
    lower: str | None,
    upper: str | None,
    filters: tuple[tuple[str, str, Any], ...],
    limit: int,
    start: dict[str, Any] | None,
) -> Page:
    """One Query of the workspace's leads on ``by_activity``, newest first, with ``activity_key``
    in ``[lower, upper]`` and ``filters`` (attribute, operator ``=``/``contains``, value)."""
    names = {"#h": "workspace_id"}
    values: dict[str, Any] = {":h": {"S": workspace_id}}
    condition = "#h = :h"
    if lower is not None or upper is not None:
        # Only when used: DynamoDB refuses a request naming an attribute no expression uses.
        names["#s"] = "activity_key"
    if lower is not None and upper is not None:
        condition += " AND #s BETWEEN :lo AND :hi"
        values[":lo"], values[":hi"] = {"S": lower}, {"S": upper}
    elif lower is not None:
        condition += " AND #s >= :lo"
        values[":lo"] = {"S": lower}
    elif upper is not None:
        condition += " AND #s <= :hi"
        values[":hi"] = {"S": upper}
    request: dict[str, Any] = {
        "IndexName": ACTIVITY_INDEX,
        "KeyConditionExpression": condition,
        "ScanIndexForward": False,
        "Limit": limit,
        "ReturnConsumedCapacity": "TOTAL",
    }
    clauses = []
    for n, (attribute, operator, value) in enumerate(filters):
        names[f"#f{n}"] = attribute
        values[f":f{n}"] = value
        clauses.append(f"contains(#f{n}, :f{n})" if operator == "contains" else f"#f{n} = :f{n}")
    if clauses:
        request["FilterExpression"] = " AND ".join(clauses)
    request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = values
    return _query(request, start, "list leads")


def query_timeline(lead_id: str, *, limit: int, start: dict[str, Any] | None) -> Page:
    """One Query of a lead's interactions on ``by_time``, newest first."""
    request = {
        "IndexName": TIME_INDEX,
        "KeyConditionExpression": "#pk = :pk",
        "ExpressionAttributeNames": {"#pk": "pk"},
        "ExpressionAttributeValues": {":pk": {"S": lead_pk(lead_id)}},
        "ScanIndexForward": False,
        "Limit": limit,
        "ReturnConsumedCapacity": "TOTAL",
    }
    return _query(request, start, "list interactions")


def _query(request: dict[str, Any], start: dict[str, Any] | None, action: str) -> Page:
    request["TableName"] = leads().Meta.table_name
    if start is not None:
        request["ExclusiveStartKey"] = start
    try:
        response = client("dynamodb").query(**request)
    except (ClientError, BotoCoreError) as exc:
        raise faults.fault(action, exc) from None
    return Page(
        items=list(response.get("Items", [])),
        last_key=response.get("LastEvaluatedKey"),
        evaluated=int(response.get("ScannedCount", 0)),
        capacity_units=float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)),
    )
