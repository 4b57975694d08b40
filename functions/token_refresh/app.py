"""Scheduled: refresh the TikTok tokens of every integration whose access token expires soon."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.observability import logger, metrics, tracer
from orcapulse_tiktok.token_schedule import refresh_due_tokens


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return refresh_due_tokens(time_left_ms=context.get_remaining_time_in_millis).to_dict()
