"""Merging leads: the listed leads' interactions move onto the target, one person (DESIGN §9).

The steps, each safe to run again, so a merge interrupted anywhere — a failed call, or a write
whose answer was lost — is finished by running the same request again
(docs/lifecycle-merge-erase.md):

1. **Point** every source at the target (``merged_into``, out of the listing). From then on a
   capture for a source's person lands on the target (``interactions.py``), so nothing new
   arrives on a source while it is emptied.
2. **Move** every interaction of every source: a conditional put of a copy on the target (a
   second copy is the same item), then a stub in its place (``moved_to``, no content).
3. **Count** the target from its interactions as stored — first and last activity, count, capture
   sources, high intent, latest message, the first interaction's fields — with a write that holds
   only if the target's ``version`` did not move meanwhile (a capture landing concurrently); if it
   did, count again. A count that changes nothing is not written, so a retry of a finished merge
   changes nothing and announces nothing.
4. **Retire** the sources: leads merged into them earlier point at the target, and they drop
   what they held of the person.

The count write carries ``applied = {"kind": "merge", ...}``, which the stream turns into
``SocialLeadUpdated`` for the target (``announce.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.data import merges as merge_store
from orcapulse_tiktok.data.leads import _short
from orcapulse_tiktok.errors import BadRequest, DomainError, TransientError
from orcapulse_tiktok.interactions import copy_to
from orcapulse_tiktok.leads import get_lead, lead_for_change
from orcapulse_tiktok.models.lead import Interaction, Lead, interactions, time_key
from orcapulse_tiktok.models.lead import _plain as plain_map
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.schemas import MAX_MERGE_SOURCES as MAX_SOURCES

MAX_COUNT_ATTEMPTS = 5
MERGE = "merge"


class Conflict(DomainError):
    status = 409
    code = "merge_conflict"


class Merged(NamedTuple):
    """The target as it is after the merge, and every interaction it holds, newest first."""

    lead: Lead
    interactions: list[dict[str, Any]]


def merge(workspace_id: str, target_id: str, source_ids: Sequence[str]) -> Merged:
    """Merge ``source_ids`` (other leads of the same workspace and integration) into
    ``target_id``; see the module docstring. ``NotFound`` for an unknown lead or another
    workspace's, ``Conflict`` for another integration's or a lead merged elsewhere."""
    if not source_ids or len(source_ids) > MAX_SOURCES:
        raise BadRequest(f"lead_ids must list 1 to {MAX_SOURCES} leads", code="invalid_body")
    if len(set(source_ids)) != len(source_ids) or target_id in source_ids:
        raise BadRequest("lead_ids must be distinct and must not name the target", code="invalid_body")
    target = get_lead(workspace_id, target_id)
    sources = [_source(workspace_id, target, lead_id) for lead_id in source_ids]
    for source in sources:  # 1. point
        if source.merged_into != target_id and not merge_store.mark_merged(source, target_id):
            _source(workspace_id, target, source.lead_id)  # says why (it changed meanwhile)
            raise TransientError("The lead changed meanwhile, try again")
    for source in sources:  # 2. move
        _move_all(source.lead_id, target_id)
    earlier = set().union(*(s.merged_from or set() for s in sources))
    lead, rows = _count(target_id, {s.lead_id for s in sources} | earlier)  # 3. count
    for source in sources:  # 4. retire
        for lead_id in sorted(source.merged_from or ()):
            merge_store.repoint(lead_id, source.lead_id, target_id)
        merge_store.retire(source.lead_id, target_id)
    metrics.add_metric(name="LeadsMerged", unit=MetricUnit.Count, value=len(sources))
    logger.info("leads merged", extra={"lead_id": target_id, "merged": len(sources)})
    timeline = sorted(rows, key=lambda row: row["ix_time"]["S"], reverse=True)
    return Merged(lead, [interactions().from_raw_data(row).to_public() for row in timeline])


def _source(workspace_id: str, target: Lead, lead_id: str) -> Lead:
    source = lead_for_change(workspace_id, lead_id)
    if source.integration_id != target.integration_id:
        raise Conflict("Only leads of the same integration can be merged", code="integration_mismatch")
    if source.merged_into not in (None, target.lead_id):
        raise Conflict(f"Lead {lead_id} was merged into another lead", code="lead_already_merged")
    return source


def _move_all(source_id: str, target_id: str) -> None:
    for raw in merge_store.interaction_rows(merge_store.person_items(source_id)):
        copy_to(interactions().from_raw_data(raw), target_id)
        merge_store.stub_interaction(source_id, raw["sk"]["S"], target_id)


def _count(target_id: str, merged: set[str]) -> tuple[Lead, list[dict[str, Any]]]:
    for _ in range(MAX_COUNT_ATTEMPTS):
        items = merge_store.person_items(target_id)
        lead_rows = [i for i in items if i["sk"]["S"] == "L"]
        if not lead_rows:
            raise TransientError("The lead changed meanwhile, try again")
        lead = merge_store.lead_of(lead_rows[0])
        rows = merge_store.interaction_rows(items)
        fields = counters(lead, [Interaction.from_raw_data(r) for r in rows])
        if not _changes(lead, fields) and merged <= (lead.merged_from or set()):
            return lead, rows  # already counted: a retry of a finished merge
        fields["applied"] = {"kind": MERGE, "merged_lead_ids": sorted(merged), "at": clock.iso(clock.now())}
        if merge_store.recount(target_id, int(lead.version or 0), fields, merged):
            after = lead_store.get_lead(target_id)
            if after is None:  # pragma: no cover - only an erasure removes a lead, and it waits
                raise TransientError("The lead changed meanwhile, try again")
            return after, rows
    raise TransientError("The lead is busy, try again")


def counters(lead: Lead, items: list[Interaction]) -> dict[str, Any]:
    """The lead's fields as its interactions make them (Lead attribute → value)."""
    if not items:
        raise TransientError("The lead changed meanwhile, try again")
    by_time = sorted(items, key=lambda i: (int(i.occurred_ms), i.ix_time))
    first, last = by_time[0], by_time[-1]
    return {
        "first_seen_ms": int(first.occurred_ms),
        "last_activity_ms": int(last.occurred_ms),
        "activity_key": time_key(int(last.occurred_ms), lead.lead_id),
        "interaction_count": len(items),
        "capture_sources": {i.capture_source for i in items},
        "high_intent": any(bool(i.high_intent) for i in items),
        "message": last.message or "",
        "author": _plain(last.author) or _plain(lead.author),
        "counted": {_short(i.interaction_id) for i in items},
        "first_interaction_id": first.interaction_id,
        "capture_source": first.capture_source,
        "source_ref": _plain(first.source_ref),
        "source_state": first.source_state,
        "captured_at": clock.iso(int(first.occurred_ms) / 1000),
    }


def _plain(value: Any) -> dict[str, Any]:
    # A map attribute as a plain dict without empty fields, as captures write them.
    return {k: v for k, v in plain_map(value).items() if v}


def _changes(lead: Lead, fields: dict[str, Any]) -> bool:
    for attr, value in fields.items():
        current = getattr(lead, attr)
        if hasattr(current, "as_dict"):
            current = _plain(current)
        if attr in ("first_seen_ms", "last_activity_ms", "interaction_count") and current is not None:
            current = int(current)
        if current != value:
            return True
    return False
