"""The announcement pipeline: webhook → lead in DynamoDB → the table's stream → lead publisher →
``SocialLeadCaptured`` on the event bus, observed through a rule → SQS queue in moto. The stream is
read with the same reader the local stack uses."""

from __future__ import annotations

import boto3
import pytest
from orcapulse_tiktok.models.lead import Author, Lead

from orcapulse_local.streams import StreamReader, lambda_event
from tests.support.connect import connect
from tests.support.deployment import CONTEXT
from tests.support.webhooks import (
    BusCapture,
    Webhook,
    comment_content,
    high_intent_content,
    message_content,
    recording_aws_calls,
    status_of,
)

LEADS_TABLE = CONTEXT.resources["LeadsTable"]["Ref"]


@pytest.fixture
def webhook(load_function, lambda_context, aws, tiktok_state) -> Webhook:
    return Webhook(load_function("webhook"), lambda_context, tiktok_state)


@pytest.fixture
def publisher(load_function, lambda_context, aws):
    module = load_function("lead_publisher")
    return lambda event: module.lambda_handler(event, lambda_context)


@pytest.fixture
def alpha(load_function, lambda_context, tiktok, aws) -> str:
    return connect(load_function, lambda_context, tiktok, workspace="ws-1", open_id="open-id-alpha")


@pytest.fixture
def stream(aws) -> StreamReader:
    return StreamReader(LEADS_TABLE, region_name="us-east-1")


@pytest.fixture
def bus(aws) -> BusCapture:
    return BusCapture(aws.event_bus)


def public_leads(aws) -> dict[str, dict]:
    leads = (Lead.from_raw_data(item).to_public() for item in aws.items("LeadsTable"))
    return {lead["lead_id"]: lead for lead in leads}


def test_each_new_lead_is_announced_once_with_the_lead_in_detail(webhook, publisher, alpha, aws, stream, bus):
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content())
    records = stream.poll()

    result = publisher(lambda_event(records))

    assert result == {"batchItemFailures": []}
    events = bus.received()
    assert len(events) == 2
    for event in events:
        assert event["source"] == "orcapulse.social-leads"
        assert event["detail-type"] == "SocialLeadCaptured"
    assert {e["detail"]["lead_id"]: e["detail"] for e in events} == public_leads(aws)
    assert {e["detail"]["capture_source"] for e in events} == {"tiktok_comment", "tiktok_dm"}


def test_the_lambda_event_is_shaped_like_the_event_source_mappings(webhook, alpha, stream):
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    [record] = lambda_event(stream.poll())["Records"]
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == stream.stream_arn
    assert set(record["dynamodb"]) >= {"Keys", "NewImage", "SequenceNumber", "StreamViewType"}
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert stream.poll() == []  # each record is read once


def test_duplicates_and_lead_updates_announce_nothing_new(webhook, publisher, alpha, aws, stream, bus):
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    publisher(lambda_event(stream.poll()))
    assert len(bus.received()) == 1

    # A redelivery writes nothing; a high-intent flag or a hide modifies the lead (MODIFY records,
    # which the event source mapping filters out and the publisher skips as well).
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "duplicate"
    webhook.deliver("im_receive_high_intent_comment", "open-id-alpha", high_intent_content())
    webhook.deliver("comment.update", "open-id-alpha", comment_content(action="set_to_hidden"))
    records = stream.poll()
    assert [r["eventName"] for r in records] == ["MODIFY", "MODIFY"]

    assert publisher(lambda_event(records)) == {"batchItemFailures": []}
    assert bus.received() == []


def test_publish_failure_is_retried_and_the_lead_still_announced(webhook, publisher, alpha, aws, stream, bus):
    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    records = stream.poll()
    events = boto3.client("events", region_name="us-east-1")
    events.remove_targets(Rule="capture-social-leads", EventBusName=aws.event_bus, Ids=["queue"])
    events.delete_rule(Name="capture-social-leads", EventBusName=aws.event_bus)
    events.delete_event_bus(Name=aws.event_bus)  # EventBridge is unavailable for this bus

    failed = publisher(lambda_event(records))

    assert failed == {"batchItemFailures": [{"itemIdentifier": records[0]["dynamodb"]["SequenceNumber"]}]}
    # TikTok redelivers meanwhile: a duplicate, nothing new in the stream.
    assert status_of(webhook.deliver("comment.update", "open-id-alpha", comment_content()))[1] == "duplicate"
    assert stream.poll() == []

    # EventBridge is back; Lambda retries the failed record.
    events.create_event_bus(Name=aws.event_bus)
    bus.attach()
    assert publisher(lambda_event(records)) == {"batchItemFailures": []}
    [event] = bus.received()
    assert event["detail"] == next(iter(public_leads(aws).values()))


def test_batches_are_sent_ten_entries_per_call(webhook, publisher, alpha, aws, stream, bus):
    for comment_id in range(1, 24):
        webhook.deliver("comment.update", "open-id-alpha", comment_content(comment_id))
    records = stream.poll()
    assert len(records) == 23

    with recording_aws_calls() as calls:
        assert publisher(lambda_event(records)) == {"batchItemFailures": []}

    assert calls.calls == ["events.PutEvents"] * 3
    assert len(bus.received(wait_seconds=0.5)) == 23


def test_a_failed_call_marks_its_records_and_the_rest_of_the_batch(
    webhook, publisher, alpha, aws, stream, bus
):
    for comment_id in range(1, 24):
        webhook.deliver("comment.update", "open-id-alpha", comment_content(comment_id))
    records = stream.poll()

    with recording_aws_calls() as calls:
        calls.fail_next("events.PutEvents", "InternalException")
        assert calls.calls == []
        # The first call fails: all 23 must be retried, and nothing more is sent in this attempt
        # (the stream would re-deliver the later records anyway).
        result = publisher(lambda_event(records))
        assert calls.calls == ["events.PutEvents"]

    expected = [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in records]
    assert result == {"batchItemFailures": expected}
    assert bus.received() == []
    assert publisher(lambda_event(records)) == {"batchItemFailures": []}
    assert len(bus.received(wait_seconds=0.5)) == 23


def test_entries_refused_by_eventbridge_are_retried(publisher, aws, bus, monkeypatch):
    from orcapulse_tiktok import announce

    records = [
        _record("101", _image("ld_good")),
        _record("102", _image("ld_refused")),
        _record("103", _image("ld_after")),
    ]
    # A real refusal: EventBridge rejects an entry whose Detail is not JSON (MalformedDetail).
    original = announce.event_entry

    def entry(lead, bus_name):
        built = original(lead, bus_name)
        if lead["lead_id"] == "ld_refused":
            built["Detail"] = "{not json"
        return built

    monkeypatch.setattr(announce, "event_entry", entry)
    result = publisher({"Records": records})

    assert result == {"batchItemFailures": [{"itemIdentifier": "102"}]}
    assert sorted(e["detail"]["lead_id"] for e in bus.received()) == ["ld_after", "ld_good"]


def test_a_record_that_is_not_a_lead_is_failed_not_dropped(publisher, aws, bus):
    records = [
        _record("201", _image("ld_ok")),
        _record("202", {"workspace_id": {"S": "ws-1"}}),
        _record("203", _image("ld_after")),
    ]
    # Lambda resumes from 202, so 203 is held back rather than announced now and again later.
    assert publisher({"Records": records}) == {
        "batchItemFailures": [{"itemIdentifier": "202"}, {"itemIdentifier": "203"}]
    }
    assert [e["detail"]["lead_id"] for e in bus.received()] == ["ld_ok"]

    bad_type = [_record("301", {"lead_id": {"N": "1"}})]
    assert publisher({"Records": bad_type}) == {"batchItemFailures": [{"itemIdentifier": "301"}]}


def _image(lead_id: str) -> dict:
    lead = Lead(
        "ws-1",
        lead_id,
        integration_id="tt_0c6c829260b30d1254b1f075",
        platform="tiktok",
        capture_source="tiktok_comment",
        author=Author(id="orca_fan_88", username="orca_fan_88"),
        message="hello",
        source_ref={"comment_id": "1"},
        captured_at="2025-11-25T08:00:00Z",
        captured_ms=1764057600000,
        created_at="2025-11-25T08:00:01Z",
        event_type="comment.update",
    )
    lead.fill_index_keys()
    return lead.serialize()


def _record(sequence: str, image: dict) -> dict:
    return {
        "eventID": f"e{sequence}",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "eventSourceARN": CONTEXT.resources["LeadsTable"]["StreamArn"],
        "dynamodb": {
            "Keys": {"workspace_id": {"S": "ws-1"}},
            "NewImage": image,
            "SequenceNumber": sequence,
            "StreamViewType": "NEW_IMAGE",
        },
    }
