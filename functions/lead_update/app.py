"""PATCH /social-leads/{lead_id}: a person changes a lead's status, assignee or labels, with the
ETag of the version they saw as If-Match (``orcapulse_tiktok.lifecycle``)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.http import (
    current_caller,
    json_response,
    make_resolver,
    merged_response,
    refuse_unreadable_body,
)
from orcapulse_tiktok.lead_changes import LeadDetailOut, LeadPatchIn
from orcapulse_tiktok.leads import LeadMerged
from orcapulse_tiktok.lifecycle import Change, change_lead
from orcapulse_tiktok.observability import logger, metrics, tracer
from orcapulse_tiktok.schemas import IfMatch, error_responses, etag_header, json_content

app = make_resolver(enable_validation=True, require_caller=True, precondition_header="if-match")
app.exception_handler(LeadMerged)(merged_response)


@app.patch(
    "/social-leads/<lead_id>",
    operation_id="updateSocialLead",
    summary="Change a lead's status, assignee or labels (If-Match: its ETag)",
    description=(
        "Transitions: new → qualified | dismissed, qualified → routed | dismissed, dismissed → new. "
        "A change that changes nothing is 200 and keeps the version."
    ),
    tags=["social-leads"],
    responses={
        200: {**json_content(LeadDetailOut, "The lead after the change"), "headers": etag_header()},
        **error_responses(400, 401, 403, 404, 409, 412, 428, 503),
    },
)
def update_social_lead(
    lead_id: str,
    change: Annotated[LeadPatchIn, Body(description="The fields to change; absent ones stay")],
    if_match: Annotated[
        IfMatch,
        Header(alias="If-Match", description='The lead\'s ETag, as GET gave it (`"3"`); 428 without it'),
    ],
) -> Response[str]:
    caller = current_caller(app)
    given = change.model_fields_set
    lead = change_lead(
        caller.workspace_id,
        lead_id,
        user_id=caller.user_id,
        if_match=if_match,
        change=Change(
            status=change.status,
            assignee=change.assignee,
            unassign="assignee" in given and change.assignee is None,
            labels=None if change.labels is None else tuple(change.labels),
        ),
    )
    return json_response(200, lead.to_public(), headers={"ETag": lead.etag})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return refuse_unreadable_body(event) or app.resolve(event, context)
