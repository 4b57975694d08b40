"""Scheduled: lead forms caught up — pending LEAD subscriptions completed, and each subscribed
form's leads of the last 48 hours that the webhook missed added through the same capture path
(idempotent with it)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.lead_catchup import catch_up_leads
from orcapulse_tiktok.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="execution_id")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return catch_up_leads(time_left_ms=context.get_remaining_time_in_millis).to_dict()
