"""Announcing leads from the leads table's stream: ``SocialLeadCaptured`` once per new person,
``SocialLeadActivity`` once per later interaction, nothing for a duplicate; at least once (a batch
EventBridge partly refuses is retried from its first failed record), with ``detail.event_id`` for
consumers to deduplicate on. What reaches the bus is observed through a rule → SQS queue in moto,
exactly as a subscriber of the bus would see it; the stream is read from moto as Lambda's event
source mapping reads it (``orcapulse_local.streams``)."""

from __future__ import annotations

import pytest
from orcapulse_tiktok import announce
from orcapulse_tiktok.data import bus as data_bus  # the module announce publishes through

from tests.support.deployment import TEMPLATE
from tests.support.faults import aws_calls
from tests.support.webhooks import comment_content, message_content, status_of


def test_a_new_person_is_captured_with_their_first_interaction(webhook, alpha, bus):
    assert status_of(webhook.deliver("im_receive_msg", "open-id-alpha", message_content()))[1] == "accepted"
    [event] = bus.received()
    assert (event["source"], event["detail-type"]) == ("orcapulse.social-leads", "SocialLeadCaptured")
    detail = event["detail"]
    assert detail["capture_source"] == "tiktok_dm"
    assert detail["interaction_count"] == 1
    assert detail["interaction"]["kind"] == "dm"
    assert detail["interaction"]["message"] == "Hi! Is the large orca plush back in stock?"
    assert detail["event_id"] == f"{detail['lead_id']}:v1"


def test_each_later_interaction_is_activity_and_a_duplicate_is_nothing(webhook, alpha, bus, tiktok_state):
    webhook.deliver("comment.update", "open-id-alpha", comment_content(1))
    body = tiktok_state.envelope("comment.update", "open-id-alpha", comment_content(2, text="And in blue?"))
    webhook.deliver_body(body)
    webhook.deliver_body(body)  # TikTok's duplicate
    captured, activity = bus.received()
    assert captured["detail-type"] == "SocialLeadCaptured"
    assert activity["detail-type"] == "SocialLeadActivity"
    assert activity["detail"]["lead_id"] == captured["detail"]["lead_id"]
    assert activity["detail"]["interaction"]["message"] == "And in blue?"
    assert activity["detail"]["version"] == 2
    assert bus.received() == []


def test_a_high_intent_flag_or_a_hidden_comment_is_no_new_activity(webhook, alpha, bus):
    from tests.support.webhooks import NOW_MS, high_intent_content

    webhook.deliver("comment.update", "open-id-alpha", comment_content())
    assert len(bus.received()) == 1
    webhook.deliver("im_receive_high_intent_comment", "open-id-alpha", high_intent_content())
    webhook.deliver(
        "comment.update", "open-id-alpha", comment_content(action="set_to_hidden", timestamp=NOW_MS + 1)
    )
    assert bus.received() == []


def test_refused_entries_are_reported_and_the_stream_retries_them_with_the_same_event_id(
    webhook, alpha, bus, stream, monkeypatch
):
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("1"))
    original = data_bus.entry

    def refuse(bus_name, source, detail_type, detail):
        # A real refusal: EventBridge rejects an entry whose Detail is not JSON.
        return {**original(bus_name, source, detail_type, detail), "Detail": "{"}

    monkeypatch.setattr(data_bus, "entry", refuse)
    [answer] = stream.pump()
    assert len(answer["batchItemFailures"]) == 1
    assert bus.received() == []  # nothing went out; the record is still pending
    monkeypatch.setattr(data_bus, "entry", original)

    [event] = bus.received()  # the retry
    assert event["detail"]["event_id"].endswith(":v1")
    assert bus.received() == []


def test_a_transient_putevents_failure_retries_the_batch(webhook, alpha, bus, stream):
    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("1"))
    with aws_calls(fail={"PutEvents": 1}, code="InternalException", status=500):
        [answer] = stream.pump()
    assert answer["batchItemFailures"]
    assert [e["detail-type"] for e in bus.received()] == ["SocialLeadCaptured"]


def test_a_configuration_fault_fails_the_invocation_so_lambda_retries_and_dead_letters(
    webhook, alpha, stream
):
    from orcapulse_tiktok.errors import DependencyMisconfigured

    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("1"))
    with (
        aws_calls(fail={"PutEvents": 1}, code="AccessDeniedException"),
        pytest.raises(DependencyMisconfigured),
    ):
        stream.pump()


def test_the_lead_names_its_interaction_and_the_batch_reads_them_in_one_call(
    webhook, alpha, aws, stream, bus
):
    """The lead write carries only the id of the interaction it applied (the lead item stays under
    one write unit); the publisher reads a batch's interactions with one consistent BatchGetItem."""
    from tests.support.webhooks import lead_items

    webhook.deliver("comment.update", "open-id-alpha", comment_content(1, unique_identifier="first_fan"))
    webhook.deliver("comment.update", "open-id-alpha", comment_content(2, unique_identifier="second_fan"))
    assert {
        item["applied"]["M"].keys() == {"interaction_id"} for item in lead_items(aws.items("LeadsTable"))
    } == {True}
    with aws_calls() as calls:
        stream.pump()
    # (DescribeTable is the emulated event source mapping finding the table's stream.)
    assert [op for op in calls.operations("dynamodb") if op != "DescribeTable"] == ["BatchGetItem"]
    events = bus.received()
    assert sorted(e["detail"]["interaction"]["source_ref"]["comment_id"] for e in events) == ["1", "2"]


def test_a_transient_failure_to_read_the_interactions_retries_the_batch(webhook, alpha, stream, bus):
    from orcapulse_tiktok.errors import TransientError

    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("1"))
    with aws_calls(fail={"BatchGetItem": 1}, code="ThrottlingException"), pytest.raises(TransientError):
        stream.pump()
    [event] = bus.received()  # the stream's retry
    assert event["detail"]["interaction"]["message"] == "Hi! Is the large orca plush back in stock?"


def test_an_interaction_gone_before_it_is_announced_is_announced_by_its_ids(webhook, alpha, aws, bus):
    """Erased (or moved by a merge) between the capture and the announcement: the event still goes
    out, at least once, naming the interaction without content."""
    from tests.support.deployment import CONTEXT
    from tests.support.webhooks import interaction_items

    webhook.deliver("im_receive_msg", "open-id-alpha", message_content("1"))
    [item] = interaction_items(aws.items("LeadsTable"))
    table = CONTEXT.resources["LeadsTable"]["Ref"]
    aws.client("dynamodb").delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
    [event] = bus.received()
    assert event["detail"]["interaction"] == {
        "interaction_id": item["interaction_id"]["S"],
        "lead_id": item["lead_id"]["S"],
    }


def test_records_that_are_not_a_lead_announce_nothing():
    interaction = {
        "eventName": "INSERT",
        "dynamodb": {
            "Keys": {"pk": {"S": "L#ld_x"}, "sk": {"S": "I#ix_y"}},
            "NewImage": {"pk": {"S": "L#ld_x"}},
        },
    }
    keys_only = {
        "eventName": "INSERT",
        "dynamodb": {"Keys": {"sk": {"S": "L"}}, "NewImage": {"sk": {"S": "L"}}},
    }
    assert announce.events_for(interaction) == []
    assert announce.events_for(keys_only) == []


def test_the_event_source_mapping_retries_partial_failures_and_dead_letters_the_rest():
    function = TEMPLATE["Resources"]["LeadPublisherFunction"]["Properties"]
    [stream] = [e["Properties"] for e in function["Events"].values() if e["Type"] == "DynamoDB"]
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    assert stream["MaximumRecordAgeInSeconds"] <= 86400
    assert '"sk": {"S": ["L"]}' in stream["FilterCriteria"]["Filters"][0]["Pattern"]
    alarms = [
        r["Properties"]
        for r in TEMPLATE["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "AWS/SQS"
    ]
    assert alarms, "the dead-letter queue has no alarm"
