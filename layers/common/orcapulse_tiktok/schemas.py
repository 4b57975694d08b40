"""Wire shapes of the read API: the value types its query parameters are validated with and the
response bodies its OpenAPI document describes.

Enumerations come from ``platforms.py``, so the API, the platform configuration and the lead
model agree on one list. Response models document the API; tests check real responses against
them, which keeps ``docs/openapi.json`` honest without validating every response at run time."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.types import StringConstraints

from orcapulse_tiktok import clock
from orcapulse_tiktok.cursor import MAX_CURSOR_LENGTH
from orcapulse_tiktok.platforms import (
    ACCOUNT_CAPABILITIES,
    CAPTURE_SOURCE_IDS,
    INTEGRATION_STATUSES,
    LEAD_STATUSES,
    PLATFORM_IDS,
    SOURCE_STATES,
)

if TYPE_CHECKING:
    # Powertools' own shape for a route's ``responses=`` entries.
    from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

ACCOUNT_TYPES = tuple(ACCOUNT_CAPABILITIES)
MAX_LIMIT = 100
DEFAULT_LIMIT = 25
MAX_TIMESTAMP_LENGTH = 64


def _one_of(values: Sequence[str]) -> Callable[[str], str]:
    allowed = frozenset(values)

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of: {', '.join(values)}")
        return value

    return check


def _enum(values: Sequence[str]) -> WithJsonSchema:
    return WithJsonSchema({"type": "string", "enum": list(values)})


_ID_FILTER = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _integration_id(value: str) -> str:
    # Any id-shaped value filters (an unknown one simply matches nothing); only a value that could
    # never be an id is a bad filter.
    if not _ID_FILTER.fullmatch(value):
        raise ValueError("not an integration id")
    return value


def _decimal_digits(value: Any) -> Any:
    # Lax int parsing would take "1.0", " 7" or "+7"; a page size is plain digits.
    if isinstance(value, str) and not (value.isascii() and value.isdigit() and len(value) <= 3):
        raise ValueError("must be an integer")
    return value


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > MAX_TIMESTAMP_LENGTH:
        raise ValueError("must be an ISO 8601 timestamp")
    try:
        return clock.parse_iso(value)
    except (ValueError, OverflowError):
        raise ValueError("must be an ISO 8601 timestamp") from None


PlatformId = Annotated[str, AfterValidator(_one_of(PLATFORM_IDS)), _enum(PLATFORM_IDS)]
CaptureSourceId = Annotated[str, AfterValidator(_one_of(CAPTURE_SOURCE_IDS)), _enum(CAPTURE_SOURCE_IDS)]
LeadStatus = Annotated[str, AfterValidator(_one_of(LEAD_STATUSES)), _enum(LEAD_STATUSES)]
IntegrationStatus = Annotated[str, AfterValidator(_one_of(INTEGRATION_STATUSES)), _enum(INTEGRATION_STATUSES)]
SourceState = Annotated[str, AfterValidator(_one_of(SOURCE_STATES)), _enum(SOURCE_STATES)]
IntegrationId = Annotated[
    str,
    AfterValidator(_integration_id),
    WithJsonSchema({"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}),
]
PageLimit = Annotated[
    int,
    BeforeValidator(_decimal_digits),
    Field(ge=1, le=MAX_LIMIT),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
]
TimestampParam = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-11-25T08:00:00Z"]}),
]
Cursor = Annotated[str, WithJsonSchema({"type": "string", "maxLength": MAX_CURSOR_LENGTH})]
MAX_LABEL_LENGTH = 64
# Printable text without control characters (C0, DEL, C1) and without surrounding whitespace. One
# pattern serves the validator and the OpenAPI document, so a client generating values from the
# schema (schemathesis holds the server to it) and the server agree on every character.
LABEL_PATTERN = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
_LABEL = re.compile(LABEL_PATTERN)


def _label(value: str) -> str:
    if len(value) > MAX_LABEL_LENGTH or not _LABEL.fullmatch(value):
        raise ValueError("must be 1-64 printable characters without surrounding spaces")
    return value


def _boolean(value: str) -> str:
    if value not in ("true", "false"):
        raise ValueError("must be true or false")
    return value


# A user id as the JWT's ``sub`` carries it, or a label: printable text of bounded length.
_LABEL_SCHEMA = WithJsonSchema(
    {"type": "string", "minLength": 1, "maxLength": MAX_LABEL_LENGTH, "pattern": LABEL_PATTERN}
)
Assignee = Annotated[str, AfterValidator(_label), _LABEL_SCHEMA]
Label = Annotated[str, AfterValidator(_label), _LABEL_SCHEMA]
BooleanParam = Annotated[str, AfterValidator(_boolean), _enum(("true", "false"))]
LIST_PARAMETERS = (
    "platform",
    "capture_source",
    "status",
    "integration_id",
    "since",
    "until",
    "limit",
    "cursor",
    "assignee",
    "high_intent",
    "label",
)
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
# The ETags the API gives, as If-Match takes them (a list; weak or unquoted forms too). Documented,
# not enforced here: a tag that is not the lead's version is 412 after the lead is found.
IfMatch = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": '^(W/)?"?[0-9]{1,18}"?( *, *(W/)?"?[0-9]{1,18}"?)*$',
            "examples": ['"3"'],
        }
    ),
]


class _Documented(BaseModel):
    # Built on first use (the OpenAPI generator, the tests), not at import: nothing validates
    # responses at run time, so a cold start need not pay for ten core schemas.
    model_config = ConfigDict(defer_build=True)


class ErrorDetail(_Documented):
    code: str = Field(description="Stable, machine-readable error code")
    message: str
    merged_into: str | None = Field(
        default=None, description="With `lead_merged` only: the lead the person's interactions moved to"
    )


class ErrorBody(_Documented):
    error: ErrorDetail


class GatewayMessage(_Documented):
    """API Gateway's own answer, given before the function runs (the JWT authorizer's 401)."""

    message: str


class LeadAuthor(_Documented):
    id: str | None
    username: str | None


class LeadOut(_Documented):
    lead_id: Annotated[str, StringConstraints(pattern=r"^ld_[0-9a-f]{26}$")]
    workspace_id: str
    integration_id: str
    platform: PlatformId
    capture_source: CaptureSourceId
    status: LeadStatus
    author: LeadAuthor
    message: str
    source_ref: dict[str, str] = Field(description="Ids of the platform objects the lead came from")
    high_intent: bool
    source_state: SourceState
    captured_at: Timestamp
    created_at: Timestamp
    capture_sources: list[CaptureSourceId]
    first_seen_at: Timestamp
    last_activity_at: Timestamp
    interaction_count: int
    assignee: str | None
    labels: list[str]
    contact: dict[str, str] | None
    version: int


class InteractionOut(_Documented):
    interaction_id: Annotated[str, StringConstraints(pattern=r"^ix_[0-9a-f]{26}$")]
    lead_id: str
    kind: Annotated[str, _enum(("comment", "dm", "high_intent_comment", "lead_form"))]
    capture_source: CaptureSourceId
    message: str
    source_ref: dict[str, str]
    occurred_at: Timestamp
    source_state: SourceState
    high_intent: bool
    form_fields: dict[str, str] | None = None


class InteractionPageOut(_Documented):
    items: list[InteractionOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class LeadPageOut(_Documented):
    items: list[LeadOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class IntegrationOut(_Documented):
    integration_id: str
    platform: PlatformId
    status: IntegrationStatus
    open_id: str
    union_id: str | None
    display_name: str | None
    avatar_url: str | None
    scopes: list[str]
    connected_at: Timestamp
    connected_by: str
    updated_at: Timestamp
    last_event_at: Timestamp | None
    revoked_reason: str | None
    account_type: Annotated[str, _enum(ACCOUNT_TYPES)] = Field(
        description="personal (Login Kit), business (TikTok API for Business Accounts API) or ads "
        "(Marketing API advertisers: lead forms)"
    )
    capabilities: list[str] = Field(description="What this integration gives, e.g. comments, direct_messages")
    advertiser_ids: list[str] | None = Field(default=None, description="ads only: the authorised advertisers")
    subscription_status: Annotated[str, _enum(("subscribed", "pending"))] | None = Field(
        default=None, description="ads only: pending while an advertiser waits for its LEAD subscription"
    )
    pending_advertiser_ids: list[str] | None = Field(
        default=None, description="ads only: advertisers not subscribed yet"
    )


class IntegrationListOut(_Documented):
    items: list[IntegrationOut]


class CaptureSourceOut(_Documented):
    id: CaptureSourceId
    label: str
    reserved: bool = Field(description="In the schema, not produced by this deployment yet")


class PlatformOut(_Documented):
    id: PlatformId
    label: str
    capture_sources: list[CaptureSourceOut]
    capabilities: dict[str, Any]


class PlatformsOut(_Documented):
    items: list[PlatformOut]
    lead_statuses: list[LeadStatus]
    integration_statuses: list[IntegrationStatus]


def etag_header() -> dict[str, Any]:
    """The OpenAPI ``headers`` entry of a lead's answer: its ETag."""
    return {
        "ETag": {
            "description": 'The lead\'s version, quoted (`"3"`): the `If-Match` of a later change',
            "schema": {"type": "string"},
        }
    }


def json_content(model: type[BaseModel], description: str) -> OpenAPIResponse:
    """An OpenAPI response entry whose JSON body is ``model``."""
    return {"description": description, "content": {"application/json": {"model": model}}}


def error_responses(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI entries for the error answers a route can give, all in the one error shape."""
    meaning = {
        400: "Invalid parameter, request body, time range or cursor",
        401: "No authenticated user",
        403: "The token carries no workspace",
        404: "Not found in the caller's workspace",
        409: "The change conflicts with the lead's state (`invalid_transition`, `integration_mismatch`, `lead_already_merged`)",
        412: "If-Match names a version the lead no longer has (`version_mismatch`)",
        428: "If-Match is missing (`precondition_required`)",
        503: "A dependency is temporarily unavailable; retry",
    }
    out = {status: json_content(ErrorBody, meaning[status]) for status in statuses}
    if 401 in out:
        # The JWT authorizer refuses a missing or invalid token itself, as {"message": "Unauthorized"};
        # the function's own 401 (no claims reached it) has the error shape.
        out[401] = {
            "description": "No authenticated user: the authorizer's answer, or the function's",
            "content": {"application/json": {"model": ErrorBody | GatewayMessage}},
        }
    return out


# -- merge and erasure (docs/lifecycle-merge-erase.md) ------------------------------------------------
MAX_MERGE_SOURCES = 20
LeadId = Annotated[str, StringConstraints(pattern=r"^ld_[0-9a-f]{26}$")]


class MergeIn(_Documented):
    """``POST /social-leads/{lead_id}/merge``: the leads whose person is the target's."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    lead_ids: list[LeadId] = Field(
        min_length=1,
        max_length=MAX_MERGE_SOURCES,
        description="Other leads of the same workspace and integration, distinct, not the target",
        json_schema_extra={"uniqueItems": True},
    )


class MergedLeadOut(LeadOut):
    """The target lead after a merge, with every interaction it now holds."""

    interactions: list[InteractionOut] = Field(description="Every interaction of the lead, newest first")
