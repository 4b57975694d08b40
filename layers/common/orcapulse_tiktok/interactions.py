"""One interaction on one person's lead: the two writes a captured event makes (DESIGN §6).

1. A conditional put of the interaction, keyed by the TikTok object: a redelivery, even a
   concurrent one, finds it and is a ``duplicate`` (TikTok's high-intent event about a comment that
   already made an interaction flags that interaction instead).
2. An upsert of the person's lead, keyed by the person: it creates the lead on its first
   interaction and keeps its counters, capture sources, activity and latest message consistent.
   Two interactions of one new person at the same moment make one lead with a count of 2.

A person whose lead was merged lands on the target (a copy there, a stub in place of the
original); a person being erased waits (503, TikTok redelivers); an event no newer than its
person's erasure is ignored and what it stored is deleted (docs/lifecycle-merge-erase.md).

Both writes are idempotent in effect: if the second fails, the delivery answers 5xx, TikTok
redelivers, and the redelivery — which finds the interaction — finishes the lead with a
repair write. The stream of the table announces what the lead write did (``announce.py``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import archive, clock, people
from orcapulse_tiktok.data import erasures as erasure_store
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.data import merges as merge_store
from orcapulse_tiktok.data.leads import LeadConflict, Touch, _short
from orcapulse_tiktok.errors import TransientError
from orcapulse_tiktok.models.lead import (
    Interaction,
    Lead,
    expires_at,
    interaction_sk,
    interactions,
    lead_pk,
    time_key,
)
from orcapulse_tiktok.observability import logger, metrics

IGNORED = "ignored"
# A capture follows merged leads this far (a merge repoints older merges, so one hop is usual).
MAX_MERGE_HOPS = 4


class Capture(NamedTuple):
    """An interaction as read from a TikTok event, before it is stored."""

    integration_id: str
    workspace_id: str
    kind: str  # comment, dm, high_intent_comment, lead_form
    capture_source: str
    person_key: str
    object_key: str
    occurred_ms: int
    message: str
    source_ref: dict[str, str]
    author: dict[str, str | None]
    high_intent: bool = False
    form_fields: dict[str, str] | None = None
    contact: dict[str, str] | None = None
    # Where the interaction came from: a live event (``webhook``, announced on the bus) or a
    # backfill such as the leads migration (``migration``: stored, never announced as new).
    origin: str = "webhook"


class Result(NamedTuple):
    """``accepted`` (something new was stored), ``duplicate``; and the lead when it was created."""

    outcome: str
    created_lead: str | None = None


def interaction_of(capture: Capture) -> Interaction:
    """The interaction item ``capture`` makes (not stored): keyed by its person's lead and by the
    TikTok object, so every delivery of the object builds the same item."""
    lead_id = people.lead_id_for(capture.integration_id, capture.person_key)
    interaction_id = people.interaction_id_for(capture.integration_id, capture.object_key)
    delivery = archive.in_process()
    return interactions()(
        lead_pk(lead_id),
        interaction_sk(interaction_id),
        interaction_id=interaction_id,
        lead_id=lead_id,
        integration_id=capture.integration_id,
        kind=capture.kind,
        capture_source=capture.capture_source,
        message=capture.message,
        source_ref=capture.source_ref,
        occurred_ms=capture.occurred_ms,
        ix_time=time_key(capture.occurred_ms, interaction_id),
        source_state="present",
        high_intent=capture.high_intent,
        author={k: v for k, v in capture.author.items() if v is not None},
        form_fields=capture.form_fields,
        expires_at=expires_at(capture.occurred_ms),
        delivery_id=delivery[0] if delivery else None,
        delivery_body=delivery[1] if delivery else None,
    )


def record(capture: Capture) -> Result:
    """Store ``capture`` on its person's lead; see the module docstring."""
    item = interaction_of(capture)
    # The webhook delivery being processed (if any) remembers the lead, for an erasure to find.
    archive.touched(item.lead_id)
    existing = lead_store.put_interaction(item)
    if existing is None or (item.delivery_id and existing.delivery_id == item.delivery_id):
        archive.kept_on_interaction(item.lead_id)  # the stored interaction names the delivery
    if existing is not None:
        return _again(capture, existing)
    landing = _land(capture, item, fresh=True)
    if landing.lead is None:  # ignored (erased person), or counted on a merge target already
        return Result(landing.outcome)
    created = landing.lead.lead_id if int(landing.lead.interaction_count) == 1 else None
    metrics.add_metric(name="InteractionsCreated", unit=MetricUnit.Count, value=1)
    if created:
        metrics.add_metric(name="LeadsCreated", unit=MetricUnit.Count, value=1)
    return Result("accepted", created)


def _again(capture: Capture, existing: Interaction) -> Result:
    """The interaction exists: a redelivery, or the high-intent event about a known comment.

    When its lead has not counted it (the first delivery failed between its two writes, or the
    answer of the lead write was lost), the lead write runs again and finishes the lead; a lead
    that is being merged or erased decides through that write as well."""
    if existing.moved_to is not None:
        # Merged away: the target has it, and takes TikTok's high-intent flag on it.
        if capture.high_intent:
            _flag(existing.moved_to, existing)
        return Result("duplicate")
    if lead_store.has_counted(existing.lead_id, existing.interaction_id):
        # The usual redelivery: a consistent read of the lead (1 read unit) shows it counted, so
        # no write is sent at all (a refused conditional write would bill the whole lead item).
        if capture.high_intent:
            _flag(existing.lead_id, existing)
        return Result("duplicate")
    landing = _land(capture, existing, fresh=False)
    # TikTok's high-intent flag on a comment that made an interaction: the same interaction, now
    # high intent (no new interaction, so the delivery is still a duplicate).
    if capture.high_intent and landing.outcome != IGNORED:
        _flag(landing.lead_id, existing)
    return Result(landing.outcome)


def _flag(lead_id: str, item: Interaction) -> None:
    # Both flags are conditional writes: a redelivery after a failure between them finishes.
    if not item.high_intent:
        lead_store.flag_interaction_high_intent(lead_id, item.interaction_id)
    lead_store.flag_lead_high_intent(lead_id)


class Landing(NamedTuple):
    """Where an interaction was counted: ``accepted`` (the lead after the write), ``duplicate``
    (counted already) or ``ignored`` (an event older than its person's erasure)."""

    outcome: str
    lead: Lead | None
    lead_id: str


def _land(capture: Capture, origin: Interaction, *, fresh: bool) -> Landing:
    """Count ``origin`` (stored on its person's lead) on the lead that holds the person now: its
    own, or — when that was merged — the lead it was merged into, where a copy is stored and the
    original becomes a stub (last, so an interrupted move is redone by the redelivery)."""
    lead_id, item = origin.lead_id, origin
    for _ in range(MAX_MERGE_HOPS):
        try:
            lead = _touch(capture, lead_id, item)
        except LeadConflict as conflict:
            current = conflict.current
            if current is None or not current.merged_into:
                return _refused(origin, item, current, fresh=fresh)
            if item is not origin:  # a copy on a lead merged meanwhile: it moves on too
                merge_store.stub_interaction(lead_id, item.sk, current.merged_into)
            lead_id = current.merged_into
            item = copy_to(origin, lead_id)
            continue
        if item is not origin:
            merge_store.stub_interaction(origin.lead_id, origin.sk, lead_id)
        return Landing("duplicate" if lead is None else "accepted", lead, lead_id)
    raise TransientError("The lead is being merged, try again")


def _refused(origin: Interaction, item: Interaction, current: Lead | None, *, fresh: bool) -> Landing:
    """The person's lead is being erased (try again later) or was erased after the event: what
    this delivery stored goes, so the erased person does not come back."""
    if current is None:
        raise TransientError("The lead is busy, try again")
    counted = _short(item.interaction_id) in (current.counted or set())
    if fresh or not counted:
        for stored in {(origin.lead_id, origin.sk), (item.lead_id, item.sk)}:
            erasure_store.delete_interaction(*stored)
    if current.erasing:
        logger.info("interaction for a lead being erased", extra={"lead_id": current.lead_id})
        raise TransientError("The lead is being erased, try again")
    logger.info("event older than its person's erasure; ignored", extra={"lead_id": current.lead_id})
    metrics.add_metric(name="ErasedPersonEventsIgnored", unit=MetricUnit.Count, value=1)
    archive.erased_person(current.lead_id)
    return Landing(IGNORED, None, current.lead_id)


def copy_to(item: Interaction, lead_id: str) -> Interaction:
    """``item`` stored on the lead ``lead_id`` as well (one conditional put: a second copy is the
    same item, a redelivery or a retried merge finds it); the copy as stored."""
    raw = item.serialize()
    raw["pk"] = {"S": lead_pk(lead_id)}
    raw["lead_id"] = {"S": lead_id}
    copy = interactions().from_raw_data(raw)
    return lead_store.put_interaction(copy) or copy


def _applied(item: Interaction, origin: str) -> dict[str, Any]:
    # Which interaction this write applied, for the stream to announce (announce.py reads it): a
    # name, not a copy, so the lead item stays under one write unit (docs/leads-storage.md).
    applied: dict[str, Any] = {"interaction_id": item.interaction_id}
    if origin != "webhook":
        applied["origin"] = origin
    return applied


def _touch(capture: Capture, lead_id: str, item: Interaction) -> Lead | None:
    once: dict[str, Any] = {
        "lead_id": lead_id,
        "workspace_id": capture.workspace_id,
        "integration_id": capture.integration_id,
        "platform": "tiktok",
        "capture_source": capture.capture_source,
        "source_ref": capture.source_ref,
        "source_state": "present",
        "first_interaction_id": item.interaction_id,
        "captured_at": clock.iso(capture.occurred_ms / 1000),
        "created_at": clock.iso(clock.now()),
        "first_seen_ms": capture.occurred_ms,
        "status": "new",
    }
    if capture.contact:
        once["contact"] = capture.contact
    touch = Touch(
        lead_id=lead_id,
        once=once,
        latest={
            "message": capture.message,
            "author": {k: v for k, v in capture.author.items() if v is not None},
            "last_activity_ms": capture.occurred_ms,
            "activity_key": time_key(capture.occurred_ms, lead_id),
            # Retention runs from the last activity: the newest interaction and its lead expire
            # together; a late older interaction moves neither (docs/lifecycle.md).
            "expires_at": expires_at(capture.occurred_ms),
        },
        always={"applied": _applied(item, capture.origin)},
        occurred_ms=capture.occurred_ms,
        capture_source=capture.capture_source,
        high_intent=capture.high_intent,
        interaction_id=item.interaction_id,
    )
    return lead_store.touch_lead(touch)
