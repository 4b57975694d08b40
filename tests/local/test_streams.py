"""Table streams as Lambda's event source mapping runs them (``orcapulse_local.streams`` and
``event_sources.StreamMappings``), against the shared stack's moto on tables of their own: the
template's DynamoDB events found, filters applied before batching, ``BatchSize`` honoured, records
shaped as Lambda hands them over, and a failed record — reported or a failed invocation — delivered
again from where it failed, with nothing skipped."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import pytest

from orcapulse_local.aws_server import client
from orcapulse_local.event_sources import StreamEvent, StreamMappings, stream_events
from orcapulse_local.lambda_runtime import Invocation
from orcapulse_local.streams import StreamSource, filter_patterns
from orcapulse_local.template import function_spec

pytestmark = pytest.mark.slow
LEADS_ONLY = filter_patterns(
    {"FilterCriteria": {"Filters": [{"Pattern": '{"dynamodb": {"Keys": {"sk": {"S": ["L"]}}}}'}]}}
)


def new_table(live: Any) -> str:
    name = f"stream-test-{uuid.uuid4().hex[:8]}"
    client("dynamodb", live.aws_url).create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    return name


def put(live: Any, table: str, *keys: tuple[str, str]) -> None:
    ddb = client("dynamodb", live.aws_url)
    for pk, sk in keys:
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": sk}, "n": {"N": "1"}})


def source(live: Any, table: str, handler: Any, **kw: Any) -> StreamSource:
    return StreamSource(
        client("dynamodb", live.aws_url), client("dynamodbstreams", live.aws_url), table, handler, **kw
    )


def pks(batch: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in batch["Records"]]


def test_the_templates_dynamodb_events_are_found_with_their_settings(live):
    assert live.streams is not None
    [event] = stream_events(live.functions, live.ctx)
    props = function_spec(live.template, "LeadPublisherFunction")["Events"]["LeadsStream"]["Properties"]
    assert (event.function, event.name, event.table) == ("LeadPublisherFunction", "LeadsStream", "LeadsTable")
    assert event.batch_size == props["BatchSize"]
    assert event.window_seconds == props["MaximumBatchingWindowInSeconds"]
    assert list(event.patterns) == filter_patterns(props)
    assert live.streams.sources[event.key].table_name == live.provisioned.tables["LeadsTable"]


def test_filtered_records_are_batched_and_shaped_as_lambda_sends_them(live):
    table = new_table(live)
    put(live, table, ("a", "L"), ("a", "I#1"), ("b", "L"), ("b", "I#2"), ("c", "L"), ("d", "L"), ("d", "I#3"))
    batches: list[dict[str, Any]] = []
    stream = source(
        live,
        table,
        lambda e: cast(Any, batches.append(e)) or {"batchItemFailures": []},
        patterns=LEADS_ONLY,
        batch_size=2,
    )
    stream.pump()
    # Interactions are dropped before batching: full batches of lead records only.
    assert [pks(b) for b in batches] == [["a", "b"], ["c", "d"]]
    record = batches[0]["Records"][0]
    assert (record["eventSource"], record["eventName"]) == ("aws:dynamodb", "INSERT")
    assert record["eventSourceARN"].startswith("arn:aws:dynamodb:")
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["NewImage"]["n"] == {"N": "1"}
    # Delivered is delivered: nothing twice, and only what is new next time.
    assert stream.pump() == []
    put(live, table, ("e", "L"))
    stream.pump()
    assert pks(batches[-1]) == ["e"]


def test_a_reported_failure_is_delivered_again_from_that_record(live):
    table = new_table(live)
    put(live, table, ("a", "L"), ("b", "L"), ("c", "L"))
    seen: list[list[str]] = []

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        seen.append(pks(event))
        if len(seen) == 1:  # the first time, "b" does not go out
            return {
                "batchItemFailures": [{"itemIdentifier": event["Records"][1]["dynamodb"]["SequenceNumber"]}]
            }
        return {"batchItemFailures": []}

    stream = source(live, table, handler, batch_size=10)
    stream.pump()
    stream.pump()
    assert seen == [["a", "b", "c"], ["b", "c"]]
    stream.pump()
    assert len(seen) == 2


class FailingOnce:
    """A runtime whose function fails its first invocation, then succeeds."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, function: str, event: dict[str, Any]) -> Invocation:
        self.events.append(event)
        if len(self.events) == 1:
            return Invocation(function, "r1", error={"errorType": "Boom", "errorMessage": "no"})
        return Invocation(function, "r2", result={"batchItemFailures": []})


def test_a_failed_invocation_is_retried_with_the_same_records(live):
    table = new_table(live)
    put(live, table, ("a", "L"), ("b", "L"))
    logged: list[str]
    runtime, logged = FailingOnce(), []
    mappings = StreamMappings(
        [StreamEvent("Fn", "Stream", "Table", batch_size=10, window_seconds=0, patterns=())],
        {"Table": table},
        runtime,  # type: ignore[arg-type]
        live.aws_url,
        logged.append,
    )
    mappings.pump()
    mappings.pump()
    mappings.pump()
    assert [pks(e) for e in runtime.events] == [["a", "b"], ["a", "b"]]
    assert any("Fn.Stream: the function failed on a batch of 2 (Boom: no)" in line for line in logged)


def test_a_batch_that_keeps_failing_is_retried_less_and_less_often(live):
    table = new_table(live)
    put(live, table, ("a", "L"))
    calls: list[float] = []

    def broken(event: dict[str, Any]) -> dict[str, Any]:
        calls.append(time.monotonic())
        return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}]}

    stream = source(live, table, broken)
    stream.start(period=0.05)
    try:
        time.sleep(1.6)
    finally:
        stream.stop()
    # Every 50 ms would be ~30 calls; doubling waits (50, 100, 200, 400, 800 ms) make about five.
    assert 2 <= len(calls) <= 8, len(calls)
