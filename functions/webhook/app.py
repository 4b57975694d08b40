"""POST /webhooks/tiktok — TikTok's webhook deliveries (public route; trusted only once the
TikTok-Signature over the raw body verifies). Answers 200 ``accepted``/``duplicate``/``ignored``."""

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.capture import receive
from orcapulse_tiktok.http import json_response, make_resolver
from orcapulse_tiktok.observability import logger, metrics, tracer

app = make_resolver()


@app.post("/webhooks/tiktok")
def webhook() -> Response[str]:
    request = app.current_event.raw_event
    status = receive(request.get("body"), bool(request.get("isBase64Encoded")), request.get("headers"))
    return json_response(200, {"status": status})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
