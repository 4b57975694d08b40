"""Erasing a person on request (DESIGN §9): the lead, every interaction, every lead merged into
it — nothing that names the person is left, but a tombstone.

The steps, each safe to run again (docs/lifecycle-merge-erase.md):

1. **Mark** the lead ``erasing`` with the erasure time (``erased_ms``) and take it out of the
   listing. From then on a capture for the person waits (503, TikTok redelivers) and the lead
   answers 404.
2. **Forget** everything else that names the person (``forget_person``): the interactions, and
   each lead merged into this one (its stubs, then its own tombstone).
3. **Tombstone**: the lead item is replaced by ids, ``erased_ms`` and the next version — no
   personal data. The stream turns that write into ``SocialLeadErased`` (``announce.py``).

The tombstone is what makes the erasure stick: a replay of an event no newer than ``erased_ms``
(TikTok redelivering, a replay of the delivery archive) is refused, while a new event — the
person writing again after asking to be forgotten — starts a new lead."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock
from orcapulse_tiktok.data import deliveries
from orcapulse_tiktok.data import erasures as erasure_store
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.data import merges as merge_store
from orcapulse_tiktok.errors import TransientError
from orcapulse_tiktok.leads import LeadMerged, lead_for_change
from orcapulse_tiktok.models.lead import LEAD_SK, Lead
from orcapulse_tiktok.observability import logger, metrics

ERASE = "erase"
MAX_TOMBSTONE_ATTEMPTS = 3


def erase(workspace_id: str, lead_id: str) -> None:
    """Erase the workspace's lead ``lead_id`` and everything of its person; see the module
    docstring. ``NotFound`` for an unknown lead, another workspace's or one already erased;
    ``LeadMerged`` for a merged one (its target holds the person)."""
    lead = lead_for_change(workspace_id, lead_id, erasing=True)
    if lead.merged_into:
        raise LeadMerged(lead.merged_into)
    if not lead.erasing:  # 1. mark
        marked = erasure_store.mark_erasing(lead_id, int(clock.now() * 1000))
        if marked is None:  # changed meanwhile: merged, erased, or another erasure started
            lead = lead_for_change(workspace_id, lead_id, erasing=True)
            if lead.merged_into:
                raise LeadMerged(lead.merged_into)
        else:
            lead = marked
    erased_ms = int(lead.erased_ms or 0)
    erased = [lead_id, *sorted(lead.merged_from or ())]
    applied = {"kind": ERASE, "erased_lead_ids": erased, "erased_at": clock.iso(erased_ms / 1000)}
    forget_person(erased, erased_ms=erased_ms, applied=applied)  # 2. forget
    _tombstone(lead, erased_ms=erased_ms, applied=applied)  # 3. tombstone
    metrics.add_metric(name="LeadsErased", unit=MetricUnit.Count, value=1)
    logger.info("lead erased", extra={"lead_id": lead_id, "leads_erased": len(erased)})


def forget_person(lead_ids: list[str], *, erased_ms: int, applied: dict[str, Any]) -> None:
    """Delete everything that names the person of ``lead_ids`` (the erased lead first, then the
    leads merged into it), except the erased lead's own item, which the tombstone replaces last.

    Every store that keeps something of a person is forgotten here, and only here: first the raw
    delivery archive of DESIGN §11 (every kept delivery that touched these leads, whole: those
    referenced for the leads, and those named by their interactions), then the leads' items. A
    retry runs it all again; what is gone already is done."""
    items_of = {lead_id: merge_store.person_items(lead_id) for lead_id in lead_ids}
    named = {
        i["delivery_id"]["S"]: i.get("delivery_body", {}).get("S")
        for items in items_of.values()
        for i in items
        if "delivery_id" in i
    }
    deliveries.forget_deliveries(lead_ids, also=named)
    target, *merged = lead_ids
    erasure_store.delete_items(_keys(items_of[target], keep_lead=True))
    for source_id in merged:
        items = items_of[source_id]
        erasure_store.delete_items(_keys(items, keep_lead=True))
        for raw in items:
            if raw["sk"]["S"] == LEAD_SK:
                source = merge_store.lead_of(raw)
                if source.merged_into and not source.is_tombstone:
                    erasure_store.put_tombstone(
                        source, erased_ms=erased_ms, applied=applied, only_if=source.merged_into
                    )


def _keys(items: Iterable[dict[str, Any]], *, keep_lead: bool) -> list[dict[str, Any]]:
    return [{"pk": i["pk"], "sk": i["sk"]} for i in items if not (keep_lead and i["sk"]["S"] == LEAD_SK)]


def _tombstone(lead: Lead, *, erased_ms: int, applied: dict[str, Any]) -> None:
    for _ in range(MAX_TOMBSTONE_ATTEMPTS):
        if erasure_store.put_tombstone(lead, erased_ms=erased_ms, applied=applied, only_if="erasing"):
            return
        current = lead_store.get_lead(lead.lead_id)
        if current is None or not current.erasing:
            return  # the tombstone is there already (a retry whose first answer was lost)
        lead = current  # its version moved: write the tombstone at the next one
    raise TransientError("The lead is busy, try again")
