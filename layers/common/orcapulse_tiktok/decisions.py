"""The qualification pipeline's write-back (DESIGN §9): ``SocialLeadQualified``, ``SocialLeadRouted``
and ``SocialLeadDismissed`` from ``source=orcapulse.qualification`` on the leads bus, applied to the
lead as lifecycle changes by ``pipeline``.

The rules, in the order they are checked (docs/lifecycle.md):

- A decision is validated strictly; a malformed one is counted and dropped (no retry fixes it).
- Its lead must exist in its workspace and not be merged; else it is counted and dropped.
- Ordering: the lead keeps the time of its last lifecycle change (``lifecycle_ms``: a person's
  PATCH, or the ``decided_at`` of the decision last applied). A decision older than that is
  *superseded* and dropped: an older decision never overwrites a newer change.
- Once: a decision is known by its type and ``decided_at``; the lead keeps the keys of the
  decisions applied at its ``lifecycle_ms``, so a redelivery is a *duplicate*, while two decisions
  stamped with the same time (qualified and routed at once) both apply.
- A status the lead cannot move to is an *impossible transition*: counted, logged and dropped.

Each outcome is a metric (``LeadDecisions<Outcome>``) and a log line without personal data. Only
AWS faults raise, so EventBridge's invocation is retried (and lands in the dead-letter queue, which
is alarmed, when retries run out). The write is one conditional UpdateItem on the lead's version;
when another change wins the race, the decision is evaluated again against the new lead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from orcapulse_tiktok import clock
from orcapulse_tiktok.data import leads as lead_store
from orcapulse_tiktok.data import lifecycle as lifecycle_store
from orcapulse_tiktok.errors import TransientError
from orcapulse_tiktok.lifecycle import PIPELINE, Edit, allowed, lifecycle_write
from orcapulse_tiktok.observability import logger, metrics
from orcapulse_tiktok.schemas import LABEL_PATTERN, MAX_LABEL_LENGTH, MAX_TIMESTAMP_LENGTH

SOURCE = "orcapulse.qualification"
TARGET_STATUS = {
    "SocialLeadQualified": "qualified",
    "SocialLeadRouted": "routed",
    "SocialLeadDismissed": "dismissed",
}
MAX_ATTEMPTS = 3  # evaluations of one decision when concurrent changes keep winning the race
MAX_REASON_LENGTH = 500
MAX_ROUTE_LENGTH = 128
# A decision stamped later than this ahead of our clock is refused: applied, it would make every
# real decision until then look superseded.
MAX_CLOCK_SKEW_SECONDS = 300


def _decided_at(value: str) -> str:
    if len(value) > MAX_TIMESTAMP_LENGTH:
        raise ValueError("must be an ISO 8601 timestamp")
    try:
        decided = clock.parse_iso(value).timestamp()
    except OverflowError:
        raise ValueError("must be an ISO 8601 timestamp") from None
    if decided > clock.now() + MAX_CLOCK_SKEW_SECONDS:
        raise ValueError("must not be in the future")
    if decided < 0:
        raise ValueError("must be after 1970")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


_Text = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]


class Decision(BaseModel):
    """``detail`` of a pipeline decision: nothing more, nothing less, each field of its type."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    workspace_id: Annotated[_Text, Field(max_length=256)]
    lead_id: Annotated[str, StringConstraints(pattern=r"^ld_[0-9a-f]{26}$")]
    decided_at: Annotated[str, AfterValidator(_decided_at)]
    score: Annotated[float, AfterValidator(_finite)] | None = None
    route: Annotated[_Text, Field(max_length=MAX_ROUTE_LENGTH)] | None = None
    assignee: Annotated[_Text, Field(max_length=MAX_LABEL_LENGTH)] | None = None
    reason: Annotated[str, Field(min_length=1, max_length=MAX_REASON_LENGTH)] | None = None

    @property
    def decided_ms(self) -> int:
        return int(clock.parse_iso(self.decided_at).timestamp() * 1000)


def apply_event(event: Mapping[str, Any]) -> str:
    """Apply one EventBridge event of the pipeline; its outcome: ``applied``, ``unchanged``,
    ``duplicate``, ``superseded``, ``impossible``, ``unknown_lead``, ``merged`` or ``malformed``."""
    detail_type = event.get("detail-type")
    detail = event.get("detail")
    if event.get("source") != SOURCE or detail_type not in TARGET_STATUS or not isinstance(detail, dict):
        return _outcome("malformed", detail_type=str(detail_type)[:64], problem="not a pipeline decision")
    try:
        decision = Decision.model_validate(detail)
    except ValidationError as exc:
        # Field names only: the values may be anything, personal data included.
        fields = sorted({".".join(str(p) for p in error["loc"]) for error in exc.errors()})
        return _outcome("malformed", detail_type=str(detail_type), fields=[f[:40] for f in fields[:5]])
    for _ in range(MAX_ATTEMPTS):
        outcome = _attempt(str(detail_type), decision)
        if outcome is not None:
            return outcome
    raise TransientError("The lead kept changing while the decision was applied; try again")


def _attempt(detail_type: str, decision: Decision) -> str | None:
    """One evaluation against the lead as stored now; ``None`` when another write won the race."""
    context = {"detail_type": detail_type, "lead_id": decision.lead_id}
    lead = lead_store.get_lead(decision.lead_id)
    if lead is None or lead.workspace_id != decision.workspace_id or lead.is_tombstone or lead.erasing:
        return _outcome("unknown_lead", **context)  # an erased person is unknown
    if lead.merged_into:
        return _outcome("merged", **context)
    key = f"{detail_type}@{decision.decided_ms}"
    last = int(lead.lifecycle_ms or 0)
    if decision.decided_ms < last:
        return _outcome("superseded", **context)
    applied_now = set(lead.decisions or ()) if decision.decided_ms == last else set()
    if key in applied_now:
        return _outcome("duplicate", **context)
    target, current = TARGET_STATUS[detail_type], str(lead.status)
    if not allowed(current, target):
        return _outcome("impossible", **context, status=current, target=target)
    edits = []
    if target != current:
        edits.append(Edit("status", current, target))
    if decision.assignee is not None and decision.assignee != lead.assignee:
        edits.append(Edit("assignee", lead.assignee, decision.assignee))
    extra: dict[str, Any] = {}
    if decision.score is not None and decision.score != lead.score:
        extra["score"] = decision.score
    if decision.route is not None and decision.route != lead.route:
        extra["route"] = decision.route
    if not edits and not extra:
        return _outcome("unchanged", **context)
    changes = lifecycle_write(
        lead, edits, at_ms=decision.decided_ms, by=PIPELINE, reason=decision.reason, extra=extra
    )
    changes["decisions"] = applied_now | {key}
    written = lifecycle_store.write_lifecycle(
        decision.lead_id, expected_version=int(lead.version or 0), changes=changes
    )
    if written.lead is None:
        return None
    return _outcome("applied", **context, fields=[e.field for e in edits] + sorted(extra))


def _outcome(outcome: str, **context: Any) -> str:
    name = "LeadDecisions" + "".join(part.capitalize() for part in outcome.split("_"))
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    if outcome in ("applied", "unchanged", "duplicate", "superseded"):
        logger.info(f"pipeline decision {outcome}", extra=context)
    else:
        logger.warning(f"pipeline decision not applicable: {outcome}", extra=context)
    return outcome
