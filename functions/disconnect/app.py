"""DELETE /integrations/tiktok/{integration_id} — revoke at TikTok and remove the integration."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.http import current_caller, json_response, make_resolver
from orcapulse_tiktok.integrations import disconnect
from orcapulse_tiktok.observability import logger, metrics, tracer

# Every disconnect revokes at TikTok: load the client (and requests) while the container
# initialises, not on its first request (orcapulse_tiktok.integrations imports it lazily, for the
# read API's sake).
from orcapulse_tiktok.tiktok import client as _tiktok_client  # noqa: F401

app = make_resolver()


@app.delete("/integrations/tiktok/<integration_id>")
def delete_integration(integration_id: str) -> Response[str]:
    caller = current_caller(app)
    result = disconnect(caller.workspace_id, integration_id)
    return json_response(200, {"integration_id": result.integration_id, "revoked": result.revoked})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
