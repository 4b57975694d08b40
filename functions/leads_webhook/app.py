"""POST /webhooks/tiktok/leads — TikTok Marketing API deliveries (lead forms; public route, trusted
only once the X-Open-Signature over the body verifies). Answers 200 ``accepted``/``duplicate``/
``ignored``. One route, so it answers without a resolver, as the comment/DM webhook does."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.lead_forms import receive_leads
from orcapulse_tiktok.observability import logger, metrics, tracer
from orcapulse_tiktok.proxy import error_result, json_result


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        status = receive_leads(event.get("body"), bool(event.get("isBase64Encoded")), event.get("headers"))
    except DomainError as exc:
        return error_result(exc)
    return json_result(200, {"status": status})
