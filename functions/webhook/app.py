"""POST /webhooks/tiktok — TikTok's webhook deliveries (public route; trusted only once the
TikTok-Signature over the raw body verifies). Answers 200 ``accepted``/``duplicate``/``ignored``.

The function serves this one route (API Gateway routes nothing else to it), so it answers without
a resolver: it runs on every delivery of a burst, and routing one route costs more than the
rest of its HTTP handling."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.errors import DomainError
from orcapulse_tiktok.observability import logger, metrics, tracer
from orcapulse_tiktok.proxy import error_result, json_result
from orcapulse_tiktok.webhook import receive


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        status = receive(event.get("body"), bool(event.get("isBase64Encoded")), event.get("headers"))
    except DomainError as exc:
        return error_result(exc)
    return json_result(200, {"status": status})
