"""Leads table stream (INSERT only) → one ``SocialLeadCaptured`` event per new lead on the bus.

Records whose announcement failed are reported as batch item failures, so Lambda retries them
(and, once its retries are spent, sends them to the DLQ) — a new lead is never silently dropped.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from orcapulse_tiktok.announce import announce
from orcapulse_tiktok.observability import logger, metrics, tracer

# The whole batch failing is still a partial response: Lambda retries from the first failed record.
processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)


class LeadNotAnnounced(Exception):
    """The lead of this record is not on the bus yet; the record must be retried."""


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # PutEvents takes ten entries per call, so the batch is published first and the processor
    # then reports, record by record, the ones that did not go out.
    failed = set(announce(event.get("Records") or []).failed)

    def check(record: DynamoDBRecord) -> None:
        if (record.dynamodb.sequence_number if record.dynamodb else None) in failed:
            raise LeadNotAnnounced(record.event_id)

    return dict(
        process_partial_response(event=event, record_handler=check, processor=processor, context=context)
    )
