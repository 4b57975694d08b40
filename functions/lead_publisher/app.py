"""The leads table's stream → the leads bus: ``SocialLeadCaptured`` for a new lead,
``SocialLeadActivity`` for each later interaction, ``SocialLeadUpdated`` for a merge,
``SocialLeadErased`` for an erasure (``orcapulse_tiktok.announce``). Reports partial
batch failures, so the stream retries only from the first record whose events did not go out."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.announce import publish_stream
from orcapulse_tiktok.observability import logger, metrics, tracer


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return publish_stream(event.get("Records") or [])
