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

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import cursor
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.data.leads import LISTING_INDEXES, ListingQuery
from orcapulse_tiktok.errors import BadRequest, NotFound
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
    query: ListingQuery
    empty: bool

    def fingerprint(self) -> str:
        q = self.query
        return cursor.fingerprint(
            [q.index_name, q.hash_value, q.lower, q.upper, [list(f) for f in q.post_filters]]
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
    index, hash_attr, hash_value = lead_store.WORKSPACE_INDEX, lead_store.WORKSPACE_ATTR, workspace_id
    post: list[tuple[str, str]] = []
    for name, index_name, index_hash, attribute in LISTING_INDEXES:
        value = values[name]
        if value is None:
            continue
        if hash_attr == lead_store.WORKSPACE_ATTR:
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
    return _Plan(ListingQuery(index, hash_attr, hash_value, lower, upper, tuple(post)), empty)


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
        if _POSITION.fullmatch(position) is None:  # pragma: no cover - only this module writes them, signed
            raise cursor.InvalidCursor("The cursor is not valid")
    if plan.empty:
        return LeadPage(items=[], next_cursor=None, stats=QueryStats())

    rows: list[dict[str, Any]] = []
    calls = evaluated = 0
    units = 0.0
    resume_at: str | None = None  # set when the round-trip budget ends the page early
    filtered = bool(plan.query.post_filters)
    while True:
        # One more than the page, so a full page knows whether anything follows it.
        wanted = limit + 1 - len(rows)
        read = wanted if calls == 0 or not filtered else min(wanted * OVERREAD, MAX_EVALUATED_PER_CALL)
        answer = lead_store.query_listing(
            plan.query, workspace_id=workspace_id, limit=read, after_sort_key=position
        )
        calls += 1
        evaluated += answer.evaluated
        units += answer.capacity_units
        rows.extend(answer.items)
        if len(rows) > limit or answer.last_sort_key is None:
            break
        position = answer.last_sort_key
        if calls >= MAX_ROUND_TRIPS:
            resume_at = position
            metrics.add_metric(name="LeadsPageBudgetExhausted", unit=MetricUnit.Count, value=1)
            break

    page = rows[:limit]
    if len(rows) > limit:
        resume_at = page[-1][lead_store.SORT_ATTR]["S"]
    stats = QueryStats(calls=calls, evaluated=evaluated, returned=len(page), capacity_units=units)
    logger.debug("leads page", extra={"index": plan.query.index_name, **stats._asdict()})
    metrics.add_metric(name="LeadsPageQueries", unit=MetricUnit.Count, value=calls)
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
    lead = lead_store.get_lead(workspace_id, lead_id)
    if lead is None:
        raise NotFound("No such lead", code="lead_not_found")
    return lead.to_public()
