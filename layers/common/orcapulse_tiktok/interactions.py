"""One interaction on one person's lead: the two writes a captured event makes (DESIGN §6).

1. A conditional put of the interaction, keyed by the TikTok object: a redelivery, even a
   concurrent one, finds it and is a ``duplicate`` (TikTok's high-intent event about a comment that
   already made an interaction flags that interaction instead).
2. An upsert of the person's lead, keyed by the person: it creates the lead on its first
   interaction and keeps its counters, capture sources, activity and latest message consistent.
   Two interactions of one new person at the same moment make one lead with a count of 2.

Both writes are idempotent in effect: if the second fails, the delivery answers 5xx, TikTok
redelivers, and the redelivery — which finds the interaction — finishes the lead with a
repair write. The stream of the table announces what the lead write did (``announce.py``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import archive, clock, people
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.data.leads import LeadConflict, Touch
from orcapulse_tiktok.errors import TransientError
from orcapulse_tiktok.models.lead import Interaction, Lead, interaction_sk, interactions, lead_pk, time_key
from orcapulse_tiktok.observability import logger, metrics


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
    )


def record(capture: Capture) -> Result:
    """Store ``capture`` on its person's lead; see the module docstring."""
    item = interaction_of(capture)
    lead_id = item.lead_id
    # The webhook delivery being processed (if any) remembers the lead, for an erasure to find.
    archive.touched(lead_id)
    existing = lead_store.put_interaction(item)
    if existing is not None:
        return _again(capture, lead_id, existing)
    lead = _touch(capture, lead_id, item)
    if lead is None:  # pragma: no cover - a new interaction cannot have been counted already
        return Result("duplicate")
    created = lead.lead_id if int(lead.interaction_count) == 1 else None
    metrics.add_metric(name="InteractionsCreated", unit=MetricUnit.Count, value=1)
    if created:
        metrics.add_metric(name="LeadsCreated", unit=MetricUnit.Count, value=1)
    return Result("accepted", created)


def _again(capture: Capture, lead_id: str, existing: Interaction) -> Result:
    """The interaction exists: a redelivery, or the high-intent event about a known comment.

    The lead write runs again: if the first delivery failed before it (or its answer was lost),
    this finishes the lead; if not, the lead refuses it as counted (a duplicate)."""
    if existing.moved_to is not None:
        return Result("duplicate")  # merged away; its lead has it
    outcome = "duplicate" if _touch(capture, lead_id, existing) is None else "accepted"
    # TikTok's high-intent flag on a comment that made an interaction: the same interaction, now
    # high intent (no new interaction, so the delivery is still a duplicate).
    if capture.high_intent:
        # Both flags are conditional writes: a redelivery after a failure between them finishes.
        if not existing.high_intent:
            lead_store.flag_interaction_high_intent(lead_id, existing.interaction_id)
        lead_store.flag_lead_high_intent(lead_id)
    return Result(outcome)


def _applied(item: Interaction, origin: str) -> dict[str, Any]:
    applied = item.to_public()
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
        },
        always={"applied": _applied(item, capture.origin)},
        occurred_ms=capture.occurred_ms,
        capture_source=capture.capture_source,
        high_intent=capture.high_intent,
        interaction_id=item.interaction_id,
    )
    try:
        return lead_store.touch_lead(touch)
    except LeadConflict as conflict:
        merged_into = conflict.current.merged_into if conflict.current is not None else None
        logger.warning(
            "interaction for a merged lead", extra={"lead_id": lead_id, "merged_into": merged_into}
        )
        raise TransientError("The lead is being merged, try again") from None
