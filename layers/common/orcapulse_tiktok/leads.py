"""Reading social leads: one lead by id, and the filtered listing, newest first.

The listing never scans. Every filter combination is a DynamoDB Query on the most selective
listing index for its equality filters (integration > capture source > status > platform >
workspace), with ``since``/``until`` as a range on the index's ``sort_key`` and the remaining
equality filters as a FilterExpression. Paging is keyset paging: the cursor carries the
``sort_key`` of the last lead returned, signed and bound to the workspace and the filters, so a
page costs reads proportional to the page, whatever the table holds.

When a FilterExpression is needed, DynamoDB evaluates items before filtering them, so a page may
take several round trips to fill. At most ``MAX_ROUND_TRIPS`` are made per page, each reading at
most ``MAX_EVALUATED_PER_CALL`` items; when the matches are too sparse to fill the page within
that budget, the page comes back short, with a cursor that resumes right after the last item
read, and the client keeps paging until ``next_cursor`` is null."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok import aws, cursor
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import BadRequest, NotFound, TransientError
from orcapulse_tiktok.models.lead import Lead
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.platforms import PLATFORMS

MAX_ROUND_TRIPS = 8
# Over-read factor for filtered pages: later round trips read ahead of the matches still needed,
# so sparse filters fill a page in few calls; the cursor still lands after the last lead returned.
OVERREAD = 4
MAX_EVALUATED_PER_CALL = OVERREAD * 101  # the largest page (100) and its look-ahead item
MAX_SORT_MS = 10**13 - 1  # sort keys hold 13-digit epoch milliseconds

_LEAD_ID = re.compile(r"ld_[0-9a-f]{26}")
_POSITION = re.compile(r"[0-9]{13}#(.{1,1024})", re.DOTALL)
_PLATFORM_OF_SOURCE = {s.id: p.id for p in PLATFORMS for s in p.capture_sources}
_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)

# (filter, index, index hash attribute, item attribute), most selective first.
_INDEXES: tuple[tuple[str, str, str, str], ...] = (
    ("integration_id", "by_integration", "gsi_integration", "integration_id"),
    ("capture_source", "by_capture_source", "gsi_capture_source", "capture_source"),
    ("status", "by_status", "gsi_status", "status"),
    ("platform", "by_platform", "gsi_platform", "platform"),
)


class LeadFilters(NamedTuple):
    """The listing's filters, already validated at the HTTP edge (values are known enum members)."""

    platform: str | None = None
    capture_source: str | None = None
    status: str | None = None
    integration_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class QueryStats(NamedTuple):
    """What a page cost: DynamoDB calls, items read, items returned, capacity units consumed."""

    calls: int = 0
    evaluated: int = 0
    returned: int = 0
    capacity_units: float = 0.0


class LeadPage(NamedTuple):
    items: list[dict[str, Any]]
    next_cursor: str | None
    stats: QueryStats


class _Plan(NamedTuple):
    index_name: str
    hash_attr: str
    hash_value: str
    lower: str | None
    upper: str | None
    post_filters: tuple[tuple[str, str], ...]
    empty: bool

    def fingerprint(self) -> str:
        return cursor.fingerprint(
            [self.index_name, self.hash_value, self.lower, self.upper, [list(f) for f in self.post_filters]]
        )


def _time_bounds(since: datetime | None, until: datetime | None) -> tuple[int | None, int | None]:
    """Epoch-ms bounds such that a lead matches when ``since <= captured_at <= until`` on the
    whole-second ``captured_at`` the API shows (so ``until`` = a lead's ``captured_at`` includes it)."""
    low = high = None
    if since is not None:
        low = math.ceil(since.timestamp()) * 1000
    if until is not None:
        high = math.floor(until.timestamp()) * 1000 + 999
    return low, high


def _plan(workspace_id: str, filters: LeadFilters) -> _Plan:
    if filters.since is not None and filters.until is not None and filters.since > filters.until:
        raise BadRequest("since must not be after until", code="invalid_time_range")
    values = {
        "integration_id": filters.integration_id,
        "capture_source": filters.capture_source,
        "status": filters.status,
        "platform": filters.platform,
    }
    empty = False
    if filters.capture_source is not None and filters.platform is not None:
        # A capture source belongs to one platform: the platform filter is implied or contradicts it.
        empty = _PLATFORM_OF_SOURCE.get(filters.capture_source) != filters.platform
        values["platform"] = None
    index, hash_attr, hash_value = "by_workspace", "workspace_id", workspace_id
    post: list[tuple[str, str]] = []
    for name, index_name, index_hash, attribute in _INDEXES:
        value = values[name]
        if value is None:
            continue
        if hash_attr == "workspace_id":
            index, hash_attr, hash_value = index_name, index_hash, f"{workspace_id}#{value}"
        else:
            post.append((attribute, value))
    low, high = _time_bounds(filters.since, filters.until)
    lower = upper = None
    if low is not None:
        empty = empty or low > MAX_SORT_MS
        lower = f"{max(low, 0):013d}"
    if high is not None:
        empty = empty or high < 0
        # "$" sorts right after "#", so every key of the last millisecond is inside the bound.
        upper = f"{min(high, MAX_SORT_MS):013d}$"
    if lower is not None and upper is not None and lower > upper:
        empty = True
    return _Plan(index, hash_attr, hash_value, lower, upper, tuple(post), empty)


def _request(plan: _Plan) -> dict[str, Any]:
    names = {"#h": plan.hash_attr}
    values: dict[str, Any] = {":h": {"S": plan.hash_value}}
    condition = "#h = :h"
    if plan.lower is not None or plan.upper is not None:
        names["#s"] = "sort_key"
    if plan.lower is not None and plan.upper is not None:
        condition += " AND #s BETWEEN :lo AND :hi"
        values[":lo"], values[":hi"] = {"S": plan.lower}, {"S": plan.upper}
    elif plan.lower is not None:
        condition += " AND #s >= :lo"
        values[":lo"] = {"S": plan.lower}
    elif plan.upper is not None:
        condition += " AND #s <= :hi"
        values[":hi"] = {"S": plan.upper}
    request: dict[str, Any] = {
        "TableName": get_settings().require("leads_table"),
        "IndexName": plan.index_name,
        "KeyConditionExpression": condition,
        "ScanIndexForward": False,
        "ReturnConsumedCapacity": "TOTAL",
    }
    if plan.post_filters:
        clauses = []
        for n, (attribute, value) in enumerate(plan.post_filters):
            names[f"#f{n}"] = attribute
            values[f":f{n}"] = {"S": value}
            clauses.append(f"#f{n} = :f{n}")
        request["FilterExpression"] = " AND ".join(clauses)
    request["ExpressionAttributeNames"] = names
    request["ExpressionAttributeValues"] = values
    return request


def _start_key(plan: _Plan, workspace_id: str, position: str) -> dict[str, Any]:
    match = _POSITION.fullmatch(position)
    if match is None:  # pragma: no cover - positions are only written by this module, and signed
        raise cursor.InvalidCursor("The cursor is not valid")
    key = {
        "workspace_id": {"S": workspace_id},
        "lead_id": {"S": match.group(1)},
        "sort_key": {"S": position},
    }
    if plan.hash_attr != "workspace_id":
        key[plan.hash_attr] = {"S": plan.hash_value}
    return key


def _call(operation: str, request: dict[str, Any]) -> dict[str, Any]:
    try:
        response: dict[str, Any] = getattr(aws.client("dynamodb"), operation)(**request)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _TRANSIENT_CODES:
            raise TransientError("Could not read leads, try again") from exc
        raise
    except BotoCoreError as exc:
        raise TransientError("Could not read leads, try again") from exc
    return response


def list_leads(
    workspace_id: str, filters: LeadFilters, *, limit: int, page_cursor: str | None = None
) -> LeadPage:
    """One page of the workspace's leads matching ``filters``, newest first.

    ``page_cursor`` is a ``next_cursor`` from an earlier page of the same query and workspace;
    anything else is ``InvalidCursor``. ``since > until`` is ``BadRequest`` (``invalid_time_range``).
    """
    plan = _plan(workspace_id, filters)
    query_id = plan.fingerprint()
    position = None
    if page_cursor is not None:
        position = cursor.resume(page_cursor, workspace_id=workspace_id, query=query_id)
    if plan.empty:
        return LeadPage(items=[], next_cursor=None, stats=QueryStats())

    request = _request(plan)
    rows: list[dict[str, Any]] = []
    calls = evaluated = 0
    units = 0.0
    resume_at: str | None = None  # set when the round-trip budget ends the page early
    while True:
        # One more than the page, so a full page knows whether anything follows it.
        wanted = limit + 1 - len(rows)
        if calls == 0 or not plan.post_filters:
            request["Limit"] = wanted
        else:
            request["Limit"] = min(wanted * OVERREAD, MAX_EVALUATED_PER_CALL)
        if position is not None:
            request["ExclusiveStartKey"] = _start_key(plan, workspace_id, position)
        response = _call("query", request)
        calls += 1
        evaluated += int(response.get("ScannedCount", 0))
        units += float(response.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0))
        rows.extend(response.get("Items", []))
        last_key = response.get("LastEvaluatedKey")
        if len(rows) > limit or last_key is None:
            break
        position = last_key["sort_key"]["S"]
        if calls >= MAX_ROUND_TRIPS:
            resume_at = position
            metrics.add_metric(name="LeadsPageBudgetExhausted", unit="Count", value=1)
            break

    page = rows[:limit]
    if len(rows) > limit:
        resume_at = page[-1]["sort_key"]["S"]
    stats = QueryStats(calls=calls, evaluated=evaluated, returned=len(page), capacity_units=units)
    logger.debug("leads page", extra={"index": plan.index_name, **stats._asdict()})
    metrics.add_metric(name="LeadsPageQueries", unit="Count", value=calls)
    return LeadPage(
        items=[Lead.from_raw_data(row).to_public() for row in page],
        next_cursor=(
            cursor.issue(workspace_id=workspace_id, query=query_id, position=resume_at)
            if resume_at is not None
            else None
        ),
        stats=stats,
    )


def get_lead(workspace_id: str, lead_id: str) -> dict[str, Any]:
    """The workspace's lead ``lead_id``; another workspace's, an unknown or a malformed id is
    ``NotFound`` (a malformed one without a read)."""
    if not _LEAD_ID.fullmatch(lead_id):
        raise NotFound("No such lead", code="lead_not_found")
    response = _call(
        "get_item",
        {
            "TableName": get_settings().require("leads_table"),
            "Key": {"workspace_id": {"S": workspace_id}, "lead_id": {"S": lead_id}},
            "ConsistentRead": True,
        },
    )
    item = response.get("Item")
    if not item:
        raise NotFound("No such lead", code="lead_not_found")
    return Lead.from_raw_data(item).to_public()
