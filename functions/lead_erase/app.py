"""DELETE /social-leads/{lead_id} — erase the person: the lead, every interaction, every lead
merged into it; a tombstone without personal data stays (``orcapulse_tiktok.erasure``)."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.erasure import erase
from orcapulse_tiktok.http import current_caller, make_resolver
from orcapulse_tiktok.observability import logger, metrics, tracer
from orcapulse_tiktok.proxy import NO_STORE
from orcapulse_tiktok.schemas import error_responses

app = make_resolver(enable_validation=True, require_caller=True)


@app.delete(
    "/social-leads/<lead_id>",
    operation_id="eraseSocialLead",
    summary="Erase the lead's person and every interaction; SocialLeadErased is published",
    description=(
        "Nothing of the person is kept but a tombstone without personal data: a replay of an "
        "event no newer than the erasure is ignored, a new event starts a new lead. A merged lead "
        "answers 404 `lead_merged` (erase its `merged_into`)."
    ),
    tags=["social-leads"],
    responses={204: {"description": "Erased"}, **error_responses(401, 403, 404, 503)},
)
def erase_social_lead(lead_id: str) -> Response[str]:
    caller = current_caller(app)
    erase(caller.workspace_id, lead_id)
    return Response(status_code=204, body="", headers=dict(NO_STORE))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
