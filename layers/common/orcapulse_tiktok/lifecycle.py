"""A lead's lifecycle (DESIGN §9): its status flow, its owner and labels, changed by a person
(``PATCH /social-leads/{lead_id}``) or by the qualification pipeline (``decisions.py``).

Every change is one conditional UpdateItem on the lead's ``version`` (``data/lifecycle.py``): the
new values, a ``version`` one higher, the ``history`` entries, the time of the change
(``lifecycle_ms``) and an ``applied`` descriptor. The table's stream carries that write to the
lead publisher, which announces ``SocialLeadUpdated`` from the descriptor (``announce.py``): at
least once, with the stream's retries and dead-letter queue, and never for a change that was not
written. A change that changes nothing is not written: no new version, no event.

The ``If-Match`` of a PATCH is the ``ETag`` a GET gave (``"<version>"``). Of two PATCHes sent with
the same ETag, one is applied and the other is 412, even when they ask for the same thing: the
second client did not see the first one's change. A PATCH whose answer was lost is 412 when sent
again; GET shows whether it was applied (a client re-applying its intent then gets a no-op 200).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit

from orcapulse_tiktok import clock
from orcapulse_tiktok.data import lifecycle as lifecycle_store
from orcapulse_tiktok.errors import Conflict, PreconditionFailed, PreconditionRequired
from orcapulse_tiktok.leads import LeadMerged, get_lead
from orcapulse_tiktok.models.lead import Lead
from orcapulse_tiktok.observability import logger, metrics

TRANSITIONS: Mapping[str, frozenset[str]] = {
    "new": frozenset({"qualified", "dismissed"}),
    "qualified": frozenset({"routed", "dismissed"}),
    "dismissed": frozenset({"new"}),
    "routed": frozenset(),
}
HISTORY_LIMIT = 100  # the newest changes kept on the lead; the bus has every one
LIFECYCLE = "lifecycle"  # the ``applied.kind`` of a lifecycle write
PIPELINE = "pipeline"  # ``by`` of the pipeline's changes


class InvalidTransition(Conflict):
    code = "invalid_transition"


class Change(NamedTuple):
    """What a PATCH asks for: ``None`` for a field it leaves alone (``unassign`` clears the
    assignee, since ``null`` is a value there)."""

    status: str | None = None
    assignee: str | None = None
    unassign: bool = False
    labels: tuple[str, ...] | None = None


class Edit(NamedTuple):
    field: str
    before: Any
    after: Any


def allowed(current: str, target: str) -> bool:
    """Whether the status may go from ``current`` to ``target`` (staying put is always allowed)."""
    return current == target or target in TRANSITIONS.get(current, frozenset())


def edits_for(lead: Lead, change: Change) -> list[Edit]:
    """The fields ``change`` really changes on ``lead``, in history order; ``InvalidTransition``
    when it asks for a status the lead cannot move to."""
    out: list[Edit] = []
    current = str(lead.status)
    if change.status is not None and change.status != current:
        if not allowed(current, change.status):
            raise InvalidTransition(f"A {current} lead cannot become {change.status}")
        out.append(Edit("status", current, change.status))
    assignee = None if change.unassign else change.assignee
    if (change.unassign or change.assignee is not None) and assignee != lead.assignee:
        out.append(Edit("assignee", lead.assignee, assignee))
    before = list(lead.labels or [])
    if change.labels is not None and set(change.labels) != set(before):
        out.append(Edit("labels", before, list(change.labels)))
    return out


def history_entries(edits: Sequence[Edit], *, at: str, by: str, reason: str | None) -> list[dict[str, Any]]:
    return [
        {"at": at, "by": by, "field": e.field, "from": e.before, "to": e.after, "reason": reason}
        for e in edits
    ]


def lifecycle_write(
    lead: Lead,
    edits: Sequence[Edit],
    *,
    at_ms: int,
    by: str,
    reason: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The attributes one lifecycle change sets: the edited fields, the history with its new
    entries (the newest ``HISTORY_LIMIT``), the change time and the descriptor the stream
    announces (``extra``: further attributes, e.g. the pipeline's score)."""
    entries = history_entries(edits, at=clock.iso(at_ms / 1000), by=by, reason=reason)
    history = [dict(entry) for entry in lead.history or []] + entries
    version = int(lead.version or 0) + 1
    applied: dict[str, Any] = {"kind": LIFECYCLE, "version": version, "by": by, "changes": entries}
    changes: dict[str, Any] = {e.field: e.after for e in edits}
    changes.update(extra or {})
    changes.update(history=history[-HISTORY_LIMIT:], lifecycle_ms=at_ms, applied=applied)
    return changes


# -- PATCH /social-leads/{lead_id} --------------------------------------------------------------------
def parse_if_match(header: str | None) -> list[str]:
    """The entity tags of an ``If-Match`` header (RFC 9110: a list; ``W/`` weak tags compare
    weakly here, as the ETag is the version whichever way it is compared). A missing or empty
    header, or ``*`` (which names no version), is ``PreconditionRequired``."""
    tags = [tag.strip() for tag in (header or "").split(",") if tag.strip()]
    if not tags or "*" in tags:
        raise PreconditionRequired(
            'Send the lead\'s ETag as If-Match (GET /social-leads/{lead_id} gives it, e.g. "3")'
        )
    return [tag.removeprefix("W/").strip('"') for tag in tags]


def change_lead(
    workspace_id: str, lead_id: str, *, user_id: str, if_match: str | None, change: Change
) -> Lead:
    """Apply a person's ``change`` to the workspace's lead if it is at the version ``if_match``
    names. Raises ``PreconditionRequired`` (no If-Match), ``NotFound``/``LeadMerged``,
    ``PreconditionFailed`` (another version), ``InvalidTransition``. A change that changes
    nothing returns the lead as it is."""
    tags = parse_if_match(if_match)
    lead = get_lead(workspace_id, lead_id)
    version = int(lead.version or 0)
    matching = [int(tag) for tag in tags if tag.isascii() and tag.isdigit() and len(tag) < 19]
    if version not in matching:
        raise PreconditionFailed(f"The lead is at version {version}: GET it again and retry")
    edits = edits_for(lead, change)
    if not edits:
        return lead
    now_ms = int(clock.now() * 1000)
    # A person's change is the newest lifecycle change whatever a decision's clock said: the
    # person saw this version. The pipeline's decisions applied at the old time are forgotten.
    at_ms = max(now_ms, int(lead.lifecycle_ms or 0) + 1)
    changes = lifecycle_write(lead, edits, at_ms=at_ms, by=user_id)
    changes["decisions"] = None
    written = lifecycle_store.write_lifecycle(lead_id, expected_version=version, changes=changes)
    if written.lead is None:
        current = written.current
        if current is not None and current.merged_into:
            raise LeadMerged(current.merged_into)
        metrics.add_metric(name="LeadChangeConflicts", unit=MetricUnit.Count, value=1)
        raise PreconditionFailed(
            "The lead changed meanwhile: GET it again and retry", code="version_mismatch"
        )
    metrics.add_metric(name="LeadChanges", unit=MetricUnit.Count, value=len(edits))
    logger.info("lead changed", extra={"lead_id": lead_id, "fields": [e.field for e in edits]})
    return written.lead
