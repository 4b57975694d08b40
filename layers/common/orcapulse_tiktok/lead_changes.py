"""Wire shapes of a lead's lifecycle: the body of ``PATCH /social-leads/{lead_id}`` and the one-lead
answer with its history (``schemas.py`` holds the read API's shapes these build on)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from orcapulse_tiktok.platforms import LEAD_STATUSES
from orcapulse_tiktok.schemas import (
    LABEL_PATTERN,
    MAX_LABEL_LENGTH,
    Assignee,
    Label,
    LeadOut,
    LeadStatus,
    Timestamp,
    _Documented,
    _enum,
)


class HistoryEntryOut(_Documented):
    at: Timestamp
    by: str = Field(description="The user (`sub`) who made the change, or `pipeline`")
    field: Annotated[str, _enum(("status", "assignee", "labels"))]
    from_: Any = Field(alias="from", description="The value before")
    to: Any = Field(description="The value after")
    reason: str | None


class LeadDetailOut(LeadOut):
    """One lead (GET, PATCH): the listing's fields and the lifecycle ones the listing leaves out."""

    history: list[HistoryEntryOut] = Field(description="The lifecycle changes, oldest first (the last 100)")
    score: float | None = Field(description="The qualification pipeline's last score")
    route: str | None = Field(description="Where the qualification pipeline routed the lead")


MAX_LABELS = 20


def _unique(labels: list[str]) -> list[str]:
    if len(set(labels)) != len(labels):
        raise ValueError("labels must not repeat")
    return labels


def _not_null(value: Any) -> Any:
    # Absent leaves the field alone; an explicit null is no status and no label list.
    if value is None:
        raise ValueError("must not be null")
    return value


_LABEL_ITEM = {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_LENGTH, "pattern": LABEL_PATTERN}


class LeadPatchIn(BaseModel):
    """``PATCH /social-leads/{lead_id}``: any of the three, nothing else. ``assignee: null``
    unassigns; ``labels`` replaces the lead's labels (``[]`` clears them)."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)

    status: Annotated[
        LeadStatus | None,
        BeforeValidator(_not_null),
        WithJsonSchema({"type": "string", "enum": list(LEAD_STATUSES)}),
    ] = Field(default=None, description="The new status (see the transitions)")
    assignee: Assignee | None = Field(
        default=None, description="The user the lead is assigned to; null unassigns"
    )
    labels: Annotated[
        list[Label] | None,
        BeforeValidator(_not_null),
        Field(max_length=MAX_LABELS),
        AfterValidator(_unique),
        WithJsonSchema({"type": "array", "items": _LABEL_ITEM, "maxItems": MAX_LABELS, "uniqueItems": True}),
    ] = Field(default=None, description=f"Every label of the lead, at most {MAX_LABELS}, each once")
