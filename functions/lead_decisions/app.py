"""The qualification pipeline's decisions from the leads bus (``SocialLeadQualified``,
``SocialLeadRouted``, ``SocialLeadDismissed``) applied to their leads once, in decision order
(``orcapulse_tiktok.decisions``). A decision that cannot apply is counted and acknowledged; an AWS
fault raises, so the asynchronous invocation is retried and, when retries run out, lands in the
dead-letter queue."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.decisions import apply_event
from orcapulse_tiktok.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    return {"outcome": apply_event(event if isinstance(event, dict) else {})}
