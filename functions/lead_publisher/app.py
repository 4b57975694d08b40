"""Scheduled backstop: announce every lead whose announcement is overdue — still marked pending
after the webhook's publish failed and TikTok's redeliveries did not complete it, or after the
webhook died mid-delivery. The webhook announces new leads itself; this only catches the rest."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.announce import announce_overdue
from orcapulse_tiktok.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return announce_overdue(time_left_ms=context.get_remaining_time_in_millis).to_dict()
