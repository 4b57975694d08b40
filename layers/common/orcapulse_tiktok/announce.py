"""Announcing leads on the event bus, from the leads table's stream (DESIGN §6).

The webhook writes no outbox: every write to a lead item is on the table's stream, which delivers
each record at least once, in order per lead, and retries a batch until it succeeds or lands in
the on-failure queue (alarmed). This function turns lead records into events:

- a new lead (INSERT) → ``SocialLeadCaptured``: the lead, and its first interaction;
- a lead whose ``interaction_count`` grew → ``SocialLeadActivity``: lead id, version and the
  interaction that write applied.

A capture's lead write names its interaction (``applied.interaction_id``) rather than copying it,
so the lead item stays under one write unit (docs/leads-storage.md); the interactions a batch
announces are read with one consistent BatchGetItem.
- a lifecycle change (a PATCH, a pipeline decision: ``applied.kind`` is ``lifecycle`` and names
  the version it made) → ``SocialLeadUpdated``: the lead, and the change (who, which fields);
- a merge's count write → ``SocialLeadUpdated``; an erasure's tombstone → ``SocialLeadErased``;
- anything else (a high-intent flag, a source state, a write of the leads migration) → nothing.

Every event carries ``detail.event_id`` (``<lead_id>:v<version>``): the same record delivered
twice yields the same id, so consumers deduplicate on it. A batch whose events EventBridge did not
all accept reports the records that failed, and the stream retries from the first of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.data import bus, lead_batches
from orcapulse_tiktok.models.lead import LEAD_SK, Interaction, Lead, leads
from orcapulse_tiktok.observability import logger, metrics

SOURCE = "orcapulse.social-leads"
CAPTURED = "SocialLeadCaptured"
ACTIVITY = "SocialLeadActivity"
UPDATED = "SocialLeadUpdated"
# The interactions a batch announces, by (lead id, interaction id), read once for the batch.
Found = Mapping[tuple[str, str], Interaction]


def event_id(lead: Lead) -> str:
    """The id consumers deduplicate on: one per version of a lead."""
    return f"{lead.lead_id}:v{int(lead.version or 0)}"


def captured_detail(lead: Lead, found: Found) -> dict[str, Any]:
    """``SocialLeadCaptured``: the lead as the API shows it, its first interaction, the event id."""
    return {**lead.to_public(), "interaction": _interaction(lead, found), "event_id": event_id(lead)}


def activity_detail(lead: Lead, found: Found) -> dict[str, Any]:
    """``SocialLeadActivity``: which lead, at which version, and the interaction it gained."""
    return {
        "event_id": event_id(lead),
        "lead_id": lead.lead_id,
        "workspace_id": lead.workspace_id,
        "integration_id": lead.integration_id,
        "version": int(lead.version or 0),
        "interaction_count": int(lead.interaction_count or 0),
        "interaction": _interaction(lead, found),
    }


def updated_detail(lead: Lead) -> dict[str, Any]:
    """``SocialLeadUpdated``: the lead as it is now, its event id, and ``change``, the descriptor of
    the write (``kind`` ``lifecycle``: ``by`` and ``changes``, the history entries it added)."""
    return {**lead.to_public(), "event_id": event_id(lead), "change": _applied(lead)}


def _lifecycle_write(lead: Lead) -> bool:
    # The descriptor stays on the lead until the next write replaces it: only the write that made
    # the version it names is the change (a later high-intent flag bumps the version, not this).
    applied = _applied(lead)
    return applied.get("kind") == "lifecycle" and int(applied.get("version") or -1) == int(lead.version or 0)


def _applied(lead: Lead) -> dict[str, Any]:
    return dict(lead.applied.as_dict()) if lead.applied is not None else {}


def _interaction(lead: Lead, found: Found) -> dict[str, Any]:
    """The interaction the lead's write applied, as the API shows it. One gone since (erased, or
    moved by a merge: its stub holds nothing) is announced by its ids alone."""
    interaction_id = str(_applied(lead).get("interaction_id", ""))
    item = found.get((lead.lead_id, interaction_id))
    if item is None or item.moved_to is not None:
        return {"interaction_id": interaction_id, "lead_id": lead.lead_id}
    return item.to_public()


def events_for(record: Mapping[str, Any], found: Found | None = None) -> list[tuple[str, dict[str, Any]]]:
    """The events one stream record of the leads table stands for: ``(detail-type, detail)``;
    ``found`` holds the interactions the batch's captures applied (``publish_stream`` reads them)."""
    return _detailed(_announced(record), found or {})


def _detailed(announced: tuple[str, Lead] | None, found: Found) -> list[tuple[str, dict[str, Any]]]:
    if announced is None:
        return []
    detail_type, lead = announced
    if detail_type == CAPTURED:
        return [(CAPTURED, captured_detail(lead, found))]
    if detail_type == ACTIVITY:
        return [(ACTIVITY, activity_detail(lead, found))]
    if detail_type == ERASED:
        return [(ERASED, erased_detail(lead))]
    return [(UPDATED, updated_detail(lead))]


def _to_read(announced: Sequence[tuple[str, Lead] | None]) -> list[tuple[str, str]]:
    """``(lead id, interaction id)`` of every interaction the batch's captures announce."""
    return [
        (lead.lead_id, str(_applied(lead).get("interaction_id", "")))
        for detail_type, lead in filter(None, announced)
        if detail_type in (CAPTURED, ACTIVITY)
    ]


def _announced(record: Mapping[str, Any]) -> tuple[str, Lead] | None:
    """What a stream record announces (its detail-type) and the lead as written, or ``None``."""
    change = record.get("dynamodb") or {}
    keys = change.get("Keys") or {}
    if keys.get("sk", {}).get("S") != LEAD_SK:
        return None  # interactions are announced through their lead's record
    name = record.get("eventName")
    new = change.get("NewImage")
    if not new or "lead_id" not in new:
        # Not a lead's image (a key-only record some emulators emit before the item's attributes).
        return None
    if new.get("applied", {}).get("M", {}).get("origin", {}).get("S") == "migration":
        return None  # a backfill of people the pipeline already knows, not news
    old = change.get("OldImage")
    if name == "INSERT" or (
        name == "MODIFY" and old and "first_seen_ms" not in old and "first_seen_ms" in new
    ):
        # A new lead, or the first interaction of a person after their erasure (on the tombstone).
        return CAPTURED, leads().from_raw_data(new)
    if name != "MODIFY" or not old:
        return None
    if merge_or_erase := _merge_or_erase(old, new):
        return merge_or_erase, leads().from_raw_data(dict(new))
    before, after = leads().from_raw_data(old), leads().from_raw_data(new)
    if int(after.interaction_count or 0) > int(before.interaction_count or 0):
        return ACTIVITY, after
    if _lifecycle_write(after) and int(after.version or 0) > int(before.version or 0):
        return UPDATED, after
    return None


# -- merge and erasure (docs/lifecycle-merge-erase.md) -----------------------------------------------
ERASED = "SocialLeadErased"


def _merge_or_erase(old: Mapping[str, Any], new: Mapping[str, Any]) -> str | None:
    """A merge's count write → ``SocialLeadUpdated`` for the target (the lead, and ``change``: what
    merged into it); a tombstone write → ``SocialLeadErased`` (ids only: nothing of the person).
    Only the write that set that ``applied`` announces it: a later write leaving it is not news."""
    kind = new.get("applied", {}).get("M", {}).get("kind", {}).get("S")
    if kind not in ("merge", "erase") or old.get("applied") == new.get("applied"):
        return None
    return UPDATED if kind == "merge" else ERASED


def erased_detail(lead: Lead) -> dict[str, Any]:
    """``SocialLeadErased``: ids only."""
    change = _applied(lead)
    return {
        "event_id": event_id(lead),
        "lead_id": lead.lead_id,
        "workspace_id": lead.workspace_id,
        "integration_id": lead.integration_id,
        "version": int(lead.version or 0),
        "erased_at": change.get("erased_at"),
        "erased_lead_ids": change.get("erased_lead_ids", [lead.lead_id]),
    }


def publish_stream(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Publish what a batch of stream records stands for; the Lambda partial-batch answer naming
    the records whose events did not all go out (the stream retries from the first of them)."""
    bus_name = get_settings().require("event_bus_name")
    entries: list[dict[str, Any]] = []
    owners: list[str] = []  # the sequence number of the record each entry came from
    # Each record is read once: what it announces, then the batch's interactions in one call.
    announced = [_announced(record) for record in records]
    wanted = _to_read(announced)
    found = lead_batches.interactions_at(wanted) if wanted else {}
    for record, this in zip(records, announced, strict=True):
        sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
        for detail_type, detail in _detailed(this, found):
            entries.append(bus.entry(bus_name, SOURCE, detail_type, detail))
            owners.append(sequence)
    accepted = bus.put_events(entries) if entries else []
    failed = sorted({owner for owner, ok in zip(owners, accepted, strict=True) if not ok})
    published = accepted.count(True)
    if published:
        metrics.add_metric(name="LeadEventsPublished", unit=MetricUnit.Count, value=published)
    if failed:
        metrics.add_metric(name="LeadEventsFailed", unit=MetricUnit.Count, value=len(entries) - published)
        logger.warning("lead events not accepted; the stream retries them", extra={"records": len(failed)})
    logger.info("lead stream batch", extra={"records": len(records), "events": len(entries)})
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}
