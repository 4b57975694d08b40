"""Announcing new leads on the event bus: a transactional outbox on the leads table's stream.

The webhook only writes the lead; DynamoDB then records the INSERT in the table's stream, and the
lead publisher turns each one into a ``SocialLeadCaptured`` event. A lead is stored if and only if
its INSERT is in the stream, so no lead is left out of the pipeline when a publish fails: the
stream record is retried (and after the retries, lands in the publisher's DLQ with an alarm). A
redelivered webhook writes nothing, so it announces nothing.

Delivery on the bus is at least once: a retried batch re-publishes the records after the first
failure. Consumers deduplicate on ``detail.lead_id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from orcapulse_tiktok import aws
from orcapulse_tiktok.config import get_settings
from orcapulse_tiktok.models.lead import Lead
from orcapulse_tiktok.observability import logger, metrics

SOURCE = "orcapulse.social-leads"
DETAIL_TYPE = "SocialLeadCaptured"
MAX_ENTRIES_PER_CALL = 10  # the PutEvents limit


@dataclass
class Announcement:
    """What one batch of stream records came to: how many leads went out, and the stream sequence
    numbers of the records that must be retried."""

    published: int = 0
    failed: list[str] = field(default_factory=list)


REQUIRED_FIELDS = ("lead_id", "workspace_id", "integration_id", "platform", "capture_source", "captured_at")


def lead_from_image(image: Mapping[str, Any]) -> dict[str, Any]:
    """The public lead from a stream record's ``NewImage`` (DynamoDB JSON).

    Raises ``ValueError``/``TypeError`` when the image is not a lead."""
    lead = Lead.from_raw_data(dict(image)).to_public()
    missing = [name for name in REQUIRED_FIELDS if not lead.get(name)]
    if missing:
        raise ValueError(f"not a lead: no {', '.join(missing)}")
    return lead


def event_entry(lead: Mapping[str, Any], bus_name: str) -> dict[str, Any]:
    """The PutEvents entry announcing one lead."""
    return {
        "EventBusName": bus_name,
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(lead, separators=(",", ":")),
        "Resources": [],
    }


def announce(records: Sequence[Mapping[str, Any]]) -> Announcement:
    """Publish one ``SocialLeadCaptured`` per INSERT record, in stream order, at most ten per
    PutEvents call.

    Records other than INSERT are skipped (the event source mapping filters them too). A record
    whose image is not a lead, an entry EventBridge refuses, or a call that fails marks its record
    failed. Lambda resumes a stream from the first failed record, so everything after the first
    failure is reported failed without being sent: sending it now would only announce it twice."""
    bus = get_settings().require("event_bus_name")
    result = Announcement()
    pending: list[tuple[str, dict[str, Any]]] = []
    tail: list[str] = []
    for index, record in enumerate(records):
        if record.get("eventName") != "INSERT":
            continue
        sequence = _sequence_number(record)
        try:
            lead = lead_from_image(record["dynamodb"]["NewImage"])
        except (KeyError, TypeError, ValueError, AttributeError):
            # A poison record: retried, then parked in the DLQ where the alarm points at it.
            logger.error("stream record is not a lead", extra={"sequence_number": sequence})
            tail = [_sequence_number(r) for r in records[index:]]
            break
        pending.append((sequence, event_entry(lead, bus)))

    for start in range(0, len(pending), MAX_ENTRIES_PER_CALL):
        chunk = pending[start : start + MAX_ENTRIES_PER_CALL]
        failed = _put_events(chunk)
        result.published += len(chunk) - len(failed)
        result.failed.extend(failed)
        if failed:
            result.failed.extend(seq for seq, _ in pending[start + MAX_ENTRIES_PER_CALL :])
            break
    result.failed.extend(tail)
    if result.published:
        metrics.add_metric(name="LeadsAnnounced", unit=MetricUnit.Count, value=result.published)
    if result.failed:
        metrics.add_metric(name="LeadAnnounceFailed", unit=MetricUnit.Count, value=len(result.failed))
    return result


def _put_events(chunk: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Send one PutEvents call; return the sequence numbers of the entries that did not go out."""
    events: Any = aws.client("events")
    try:
        response = events.put_events(Entries=[entry for _, entry in chunk])
    except (ClientError, BotoCoreError) as exc:
        code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
        logger.warning(
            "PutEvents failed; the stream will retry",
            extra={"aws_error": code or type(exc).__name__, "entries": len(chunk)},
        )
        return [seq for seq, _ in chunk]
    failed = _failed_entries(chunk, response.get("Entries", []))
    if failed:
        logger.warning("PutEvents refused entries; the stream will retry", extra={"failed": len(failed)})
    return failed


def _failed_entries(
    chunk: Sequence[tuple[str, dict[str, Any]]], results: Iterable[Mapping[str, Any]]
) -> list[str]:
    results = list(results)
    if len(results) != len(chunk):
        # The response must pair up with the request; if it does not, trust none of it.
        return [seq for seq, _ in chunk]
    return [
        seq
        for (seq, _), res in zip(chunk, results, strict=True)
        if res.get("ErrorCode") or not res.get("EventId")
    ]


def _sequence_number(record: Mapping[str, Any]) -> str:
    dynamodb = record.get("dynamodb")
    value = dynamodb.get("SequenceNumber") if isinstance(dynamodb, Mapping) else None
    return str(value or "")
