"""Reading social leads: one lead by id, the workspace's leads by last activity, and one lead's
interactions, newest first.

The listing never scans: it is a Query on the ``by_activity`` index (a workspace's live leads by
``activity_key``), with ``since``/``until`` as a range of the key and the other filters as a
FilterExpression. The table keeps one listing index on purpose — every index keyed by activity is
rewritten on every interaction, and each would cost two more write units per interaction
(docs/leads-storage.md). A filtered page may take several round trips to fill: at most
``MAX_ROUND_TRIPS`` per page, each reading at most ``MAX_EVALUATED_PER_CALL`` items; when matches
are too sparse to fill the page within that budget, the page comes back short with a cursor that
resumes right after the last item read.

Paging is keyset paging: the cursor carries the position after the last item returned, signed and
bound to the workspace and the query (the filters, or the lead), so a page costs reads
proportional to the page, whatever the table holds."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import cursor
from orcapulse_tiktok.data import lead_queries
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.errors import BadRequest, NotFound
from orcapulse_tiktok.models.lead import Interaction, Lead, lead_pk, leads
from orcapulse_tiktok.observability import logger, metrics

MAX_ROUND_TRIPS = 8
# Over-read factor for filtered pages: later round trips read ahead of the matches still needed,
# so sparse filters fill a page in few calls; the cursor still lands after the last lead returned.
OVERREAD = 4
MAX_EVALUATED_PER_CALL = OVERREAD * 101  # the largest page (100) and its look-ahead item
MAX_SORT_MS = 10**13 - 1  # activity keys hold 13-digit epoch milliseconds

_LEAD_ID = re.compile(r"ld_[0-9a-f]{26}")
_POSITION = re.compile(r"[0-9]{13}#(ld|ix)_[0-9a-f]{26}")


class LeadFilters(NamedTuple):
    """The listing's filters, already validated at the HTTP edge."""

    platform: str | None = None
    capture_source: str | None = None
    status: str | None = None
    integration_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    assignee: str | None = None
    high_intent: bool | None = None
    label: str | None = None


class QueryStats(NamedTuple):
    """What a page cost: DynamoDB calls, items read, items returned, capacity units consumed."""

    calls: int = 0
    evaluated: int = 0
    returned: int = 0
    capacity_units: float = 0.0


class Page(NamedTuple):
    items: list[dict[str, Any]]
    next_cursor: str | None
    stats: QueryStats


def _time_bounds(since: datetime | None, until: datetime | None) -> tuple[int | None, int | None]:
    """Epoch-ms bounds such that a lead matches when ``since <= last_activity_at <= until`` on the
    whole-second times the API shows (so ``until`` = a lead's ``last_activity_at`` includes it)."""
    low = high = None
    if since is not None:
        low = math.ceil(since.timestamp()) * 1000
    if until is not None:
        high = math.floor(until.timestamp()) * 1000 + 999
    return low, high


def _filters(f: LeadFilters) -> tuple[tuple[str, str, Any], ...]:
    out: list[tuple[str, str, Any]] = []
    for attribute, value in (
        ("platform", f.platform),
        ("status", f.status),
        ("integration_id", f.integration_id),
        ("assignee", f.assignee),
    ):
        if value is not None:
            out.append((attribute, "=", {"S": value}))
    if f.capture_source is not None:
        out.append(("capture_sources", "contains", {"S": f.capture_source}))
    if f.label is not None:
        out.append(("labels", "contains", {"S": f.label}))
    if f.high_intent is not None:
        out.append(("high_intent", "=", {"BOOL": f.high_intent}))
    return tuple(out)


def list_leads(
    workspace_id: str, filters: LeadFilters, *, limit: int, page_cursor: str | None = None
) -> Page:
    """One page of the workspace's leads matching ``filters``, most recent activity first.

    ``page_cursor`` is a ``next_cursor`` from an earlier page of the same query and workspace;
    anything else is ``InvalidCursor``. ``since > until`` is ``BadRequest`` (``invalid_time_range``).
    """
    if filters.since is not None and filters.until is not None and filters.since > filters.until:
        raise BadRequest("since must not be after until", code="invalid_time_range")
    low, high = _time_bounds(filters.since, filters.until)
    lower = None if low is None else f"{max(low, 0):013d}"
    # "$" sorts right after "#", so every key of the last millisecond is inside the bound.
    upper = None if high is None else f"{min(high, MAX_SORT_MS):013d}$"
    conditions = _filters(filters)
    query_id = cursor.fingerprint(["leads", lower, upper, [[a, o, v] for a, o, v in conditions]])
    position = _resume(page_cursor, workspace_id, query_id)
    empty = (low is not None and low > MAX_SORT_MS) or (high is not None and high < 0)
    if empty or (lower is not None and upper is not None and lower > upper):
        return Page(items=[], next_cursor=None, stats=QueryStats())

    rows: list[dict[str, Any]] = []
    calls = evaluated = 0
    units = 0.0
    resume_at: str | None = None  # set when the round-trip budget ends the page early
    while True:
        # One more than the page, so a full page knows whether anything follows it.
        wanted = limit + 1 - len(rows)
        read = wanted if calls == 0 or not conditions else min(wanted * OVERREAD, MAX_EVALUATED_PER_CALL)
        answer = lead_queries.query_activity(
            workspace_id,
            lower=lower,
            upper=upper,
            filters=conditions,
            limit=read,
            start=None if position is None else _activity_start(workspace_id, position),
        )
        calls += 1
        evaluated += answer.evaluated
        units += answer.capacity_units
        rows.extend(answer.items)
        if len(rows) > limit or answer.last_key is None:
            break
        position = answer.last_key["activity_key"]["S"]
        if calls >= MAX_ROUND_TRIPS:
            resume_at = position
            metrics.add_metric(name="LeadsPageBudgetExhausted", unit=MetricUnit.Count, value=1)
            break

    page = rows[:limit]
    if len(rows) > limit:
        resume_at = page[-1]["activity_key"]["S"]
    stats = QueryStats(calls=calls, evaluated=evaluated, returned=len(page), capacity_units=units)
    logger.debug("leads page", extra=stats._asdict())
    metrics.add_metric(name="LeadsPageQueries", unit=MetricUnit.Count, value=calls)
    model = leads()
    return Page(
        items=[model.from_raw_data(row).to_public(detail=False) for row in page],
        next_cursor=_issue(workspace_id, query_id, resume_at),
        stats=stats,
    )


def _resume(page_cursor: str | None, workspace_id: str, query_id: str) -> str | None:
    if page_cursor is None:
        return None
    position = cursor.resume(page_cursor, workspace_id=workspace_id, query=query_id)
    if _POSITION.fullmatch(position) is None:  # pragma: no cover - only this module writes them, signed
        raise cursor.InvalidCursor("The cursor is not valid")
    return position


def _issue(workspace_id: str, query_id: str, position: str | None) -> str | None:
    if position is None:
        return None
    return cursor.issue(workspace_id=workspace_id, query=query_id, position=position)


def _activity_start(workspace_id: str, position: str) -> dict[str, Any]:
    lead_id = position.split("#", 1)[1]
    return {
        "workspace_id": {"S": workspace_id},
        "activity_key": {"S": position},
        "pk": {"S": lead_pk(lead_id)},
        "sk": {"S": "L"},
    }


def get_lead(workspace_id: str, lead_id: str) -> Lead:
    """The workspace's lead ``lead_id``: another workspace's, an unknown or a malformed id is
    ``NotFound`` (a malformed one without a read); a merged one is ``NotFound`` with
    ``lead_merged`` and where it went."""
    lead = lead_for_change(workspace_id, lead_id)
    if lead.merged_into:
        raise LeadMerged(lead.merged_into)
    return lead


def lead_for_change(workspace_id: str, lead_id: str, *, erasing: bool = False) -> Lead:
    """The workspace's lead ``lead_id`` as stored, merged or not: ``NotFound`` when it is unknown,
    another workspace's, malformed (no read), erased, or — unless ``erasing`` — being erased."""
    if not _LEAD_ID.fullmatch(lead_id):
        raise NotFound("No such lead", code="lead_not_found")
    lead = lead_store.get_lead(lead_id)
    if (
        lead is None
        or lead.workspace_id != workspace_id
        or lead.is_tombstone
        or (lead.erasing and not erasing)
    ):
        raise NotFound("No such lead", code="lead_not_found")
    return lead


class LeadMerged(NotFound):
    """The lead was merged into another: 404 ``lead_merged`` naming ``merged_into``."""

    code = "lead_merged"

    def __init__(self, merged_into: str) -> None:
        super().__init__(f"The lead was merged into {merged_into}")
        self.merged_into = merged_into
        self.details = {"merged_into": merged_into}


def list_interactions(workspace_id: str, lead_id: str, *, limit: int, page_cursor: str | None = None) -> Page:
    """One page of a lead's interactions, newest first (one Query on the lead's ``by_time``
    index). The cursor is bound to the workspace and the lead: another lead's is ``InvalidCursor``."""
    get_lead(workspace_id, lead_id)
    query_id = cursor.fingerprint(["interactions", lead_id])
    position = _resume(page_cursor, workspace_id, query_id)
    start = None
    if position is not None:
        start = {
            "pk": {"S": lead_pk(lead_id)},
            "sk": {"S": "I#" + position.split("#", 1)[1]},
            "ix_time": {"S": position},
        }
    # One more than the page, so a full page knows whether anything follows it.
    answer = lead_queries.query_timeline(lead_id, limit=limit + 1, start=start)
    page = answer.items[:limit]
    resume_at = page[-1]["ix_time"]["S"] if len(answer.items) > limit else None
    stats = QueryStats(
        calls=1, evaluated=answer.evaluated, returned=len(page), capacity_units=answer.capacity_units
    )
    return Page(
        items=[Interaction.from_raw_data(row).to_public() for row in page],
        next_cursor=_issue(workspace_id, query_id, resume_at),
        stats=stats,
    )
