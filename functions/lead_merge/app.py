"""POST /social-leads/{lead_id}/merge — the listed leads are one person with the target: their
interactions move onto it (``orcapulse_tiktok.merge``; docs/lifecycle-merge-erase.md)."""

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.http import current_caller, json_response, make_resolver, refuse_unreadable_body
from orcapulse_tiktok.merge import merge
from orcapulse_tiktok.observability import logger, metrics, tracer
from orcapulse_tiktok.schemas import MergedLeadOut, MergeIn, error_responses, json_content

app = make_resolver(enable_validation=True, require_caller=True)


@app.post(
    "/social-leads/<lead_id>/merge",
    operation_id="mergeSocialLeads",
    summary="Merge other leads of the same person into this one; safe to retry",
    description=(
        "Moves every interaction of the listed leads (same workspace and integration) onto this "
        "lead and recounts it. The merged leads leave the listing and answer 404 `lead_merged` "
        "with `merged_into`. 409 codes: `integration_mismatch`, `lead_already_merged`."
    ),
    tags=["social-leads"],
    responses={
        200: json_content(MergedLeadOut, "The lead after the merge, with every interaction"),
        **error_responses(400, 401, 403, 404, 409, 503),
    },
)
def merge_social_leads(lead_id: str, body: Annotated[MergeIn, Body()]) -> Response[str]:
    caller = current_caller(app)
    merged = merge(caller.workspace_id, lead_id, body.lead_ids)
    lead = merged.lead
    headers = {"ETag": f'"{int(lead.version or 0)}"'}
    return json_response(200, {**lead.to_public(), "interactions": merged.interactions}, headers=headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return refuse_unreadable_body(event) or app.resolve(event, context)
