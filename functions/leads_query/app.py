"""The social-leads read API: GET /social-leads, /social-leads/{lead_id}[/interactions], /integrations,
/platforms."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.errors import BadRequest
from orcapulse_tiktok.http import current_caller, json_response, make_resolver, merged_response
from orcapulse_tiktok.integrations import list_integrations
from orcapulse_tiktok.lead_changes import LeadDetailOut
from orcapulse_tiktok.leads import LeadFilters, LeadMerged, get_lead, list_interactions, list_leads
from orcapulse_tiktok.observability import logger, metrics, tracer
from orcapulse_tiktok.platforms import platform_configuration
from orcapulse_tiktok.schemas import (
    DEFAULT_LIMIT,
    LIST_PARAMETERS,
    Assignee,
    BooleanParam,
    CaptureSourceId,
    Cursor,
    IntegrationId,
    IntegrationListOut,
    InteractionPageOut,
    Label,
    LeadPageOut,
    LeadStatus,
    PageLimit,
    PlatformId,
    PlatformsOut,
    TimestampParam,
    error_responses,
    etag_header,
    json_content,
)

app = make_resolver(enable_validation=True, require_caller=True)


app.exception_handler(LeadMerged)(merged_response)


def _reject_unknown(*known: str) -> None:
    # A misspelt filter must not silently widen the result.
    unknown = sorted(set(app.current_event.query_string_parameters or {}) - set(known))
    if unknown:
        shown = ", ".join(name[:40] for name in unknown[:3] if name.isprintable())
        raise BadRequest(f"Unknown query parameter: {shown or '?'}", code="invalid_parameter")


@app.get(
    "/social-leads",
    operation_id="listSocialLeads",
    summary="List the workspace's social leads, most recent activity first",
    tags=["social-leads"],
    responses={200: json_content(LeadPageOut, "One page of leads"), **error_responses(400, 401, 403, 503)},
)
def list_social_leads(
    platform: Annotated[PlatformId | None, Query(description="Only this platform's leads")] = None,
    capture_source: Annotated[
        CaptureSourceId | None, Query(description="Only leads with an interaction of this source")
    ] = None,
    status: Annotated[LeadStatus | None, Query(description="Only leads in this status")] = None,
    integration_id: Annotated[IntegrationId | None, Query(description="Only this integration's")] = None,
    since: Annotated[
        TimestampParam | None, Query(description="last_activity_at at or after (ISO 8601)")
    ] = None,
    until: Annotated[
        TimestampParam | None, Query(description="last_activity_at at or before (ISO 8601)")
    ] = None,
    limit: Annotated[PageLimit, Query(description="Page size, 1-100")] = DEFAULT_LIMIT,
    cursor: Annotated[Cursor | None, Query(description="next_cursor of the previous page")] = None,
    assignee: Annotated[Assignee | None, Query(description="Only leads assigned to this user")] = None,
    high_intent: Annotated[
        BooleanParam | None,
        Query(description="true: only leads with a high-intent interaction; false: only leads without"),
    ] = None,
    label: Annotated[Label | None, Query(description="Only leads with this label")] = None,
) -> Response[str]:
    caller = current_caller(app)
    _reject_unknown(*LIST_PARAMETERS)
    filters = LeadFilters(
        platform,
        capture_source,
        status,
        integration_id,
        since,
        until,
        assignee,
        None if high_intent is None else high_intent == "true",
        label,
    )
    page = list_leads(caller.workspace_id, filters, limit=limit, page_cursor=cursor)
    return json_response(200, {"items": page.items, "next_cursor": page.next_cursor})


@app.get(
    "/social-leads/<lead_id>",
    operation_id="getSocialLead",
    summary="One social lead of the workspace; its ETag is its version",
    tags=["social-leads"],
    responses={
        200: {
            **json_content(LeadDetailOut, "The lead"),
            "headers": etag_header(),
        },
        **error_responses(400, 401, 403, 404, 503),
    },
)
def get_social_lead(lead_id: str) -> Response[str]:
    # No parameters to misspell here: stray ones (a cache buster) are ignored, as on /platforms.
    caller = current_caller(app)
    lead = get_lead(caller.workspace_id, lead_id)
    return json_response(200, lead.to_public(), headers={"ETag": lead.etag})


@app.get(
    "/social-leads/<lead_id>/interactions",
    operation_id="listSocialLeadInteractions",
    summary="One lead's interactions, newest first",
    tags=["social-leads"],
    responses={
        200: json_content(InteractionPageOut, "One page of interactions"),
        **error_responses(400, 401, 403, 404, 503),
    },
)
def list_social_lead_interactions(
    lead_id: str,
    limit: Annotated[PageLimit, Query(description="Page size, 1-100")] = DEFAULT_LIMIT,
    cursor: Annotated[Cursor | None, Query(description="next_cursor of the previous page")] = None,
) -> Response[str]:
    caller = current_caller(app)
    _reject_unknown("limit", "cursor")
    page = list_interactions(caller.workspace_id, lead_id, limit=limit, page_cursor=cursor)
    return json_response(200, {"items": page.items, "next_cursor": page.next_cursor})


@app.get(
    "/integrations",
    operation_id="listIntegrations",
    summary="The workspace's connected social accounts: profile and status, never a token",
    tags=["integrations"],
    responses={
        200: json_content(IntegrationListOut, "The integrations"),
        **error_responses(400, 401, 403, 503),
    },
)
def get_integrations(
    platform: Annotated[PlatformId | None, Query(description="Only this platform's")] = None,
) -> Response[str]:
    caller = current_caller(app)
    _reject_unknown("platform")
    return json_response(200, {"items": list_integrations(caller.workspace_id, platform)})


@app.get(
    "/platforms",
    operation_id="getPlatforms",
    summary="Platform configuration: capture sources and capabilities of every platform",
    tags=["platforms"],
    responses={
        200: json_content(PlatformsOut, "The platform configuration"),
        **error_responses(400, 401, 403),
    },
)
def get_platforms() -> Response[str]:
    current_caller(app)
    return json_response(200, platform_configuration(webhook_mode=get_settings().webhook_mode))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
