"""DynamoDB Streams event sources, run locally: what Lambda's event source mapping does for a
``DynamoDB`` event of the template — read the table's stream, keep the records the mapping's
filter admits, invoke the function with batches shaped as Lambda sends them, and retry a batch
from the first record the function reports as failed (``ReportBatchItemFailures``).

The stack polls in a thread; tests call :meth:`StreamSource.pump` to deliver what is pending."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

# Records per GetRecords call (DynamoDB Streams' maximum).
PAGE = 1000
MAX_BACKOFF_SECONDS = 30.0


class StreamSource:
    """One table's stream feeding one function (``handler(event) -> partial batch answer``)."""

    def __init__(
        self,
        dynamodb: Any,
        streams: Any,
        table_name: str,
        handler: Callable[[dict[str, Any]], Any],
        *,
        patterns: list[dict[str, Any]] | None = None,
        batch_size: int = 100,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.dynamodb = dynamodb
        self.streams = streams
        self.table_name = table_name
        self.handler = handler
        self.patterns = patterns or []
        self.batch_size = batch_size
        self.on_error = on_error
        self._stream_arn: str | None = None
        self._after: dict[str, str] = {}  # shard id → last sequence number delivered
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._caught_up = True
        self._thread: threading.Thread | None = None

    def _arn(self) -> str:
        if self._stream_arn is None:
            described = self.dynamodb.describe_table(TableName=self.table_name)["Table"]
            self._stream_arn = str(described["LatestStreamArn"])
        return self._stream_arn

    def _read(self) -> list[dict[str, Any]]:
        arn = self._arn()
        records: list[dict[str, Any]] = []
        for shard in self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            after = self._after.get(shard_id)
            kwargs: dict[str, Any] = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                if after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self.streams.get_shard_iterator(StreamArn=arn, ShardId=shard_id, **kwargs)[
                "ShardIterator"
            ]
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator, Limit=PAGE)
                for record in page["Records"]:
                    record["eventSourceARN"] = arn
                    record["_shard"] = shard_id
                    records.append(record)
                # An open shard always names a next iterator: a short page is the end, for now.
                iterator = page.get("NextShardIterator") if len(page["Records"]) == PAGE else None
        return records

    def _admitted(self, record: dict[str, Any]) -> bool:
        return not self.patterns or any(_matches(pattern, record) for pattern in self.patterns)

    def poll(self) -> bool:
        """:meth:`pump` once; False when a batch failed and waits to be retried."""
        self.pump()
        return self._caught_up

    def pump(self) -> list[Any]:
        """Deliver every pending record once, in batches of up to ``batch_size`` records the
        filter admits (records it drops are passed over, as Lambda discards them before
        batching); a batch the function fails (or reports as partly failed) stops the pump at its
        first failed record, to be retried next time. Returns the function's answers."""
        answers: list[Any] = []
        with self._lock:
            self._caught_up = False
            passed: list[dict[str, Any]] = []  # every record since the last delivered position
            batch: list[dict[str, Any]] = []  # the admitted ones among them
            for record in self._read():
                passed.append(record)
                if self._admitted(record):
                    batch.append(record)
                if len(batch) == self.batch_size:
                    if not self._deliver(passed, batch, answers):
                        return answers
                    passed, batch = [], []
            self._caught_up = self._deliver(passed, batch, answers)
        return answers

    def _deliver(self, passed: list[dict[str, Any]], batch: list[dict[str, Any]], answers: list[Any]) -> bool:
        """Invoke the function with ``batch`` (if any) and move past ``passed`` up to the first
        record the answer names as failed; False when one was."""
        failed: set[str] = set()
        if batch:
            answer = self.handler({"Records": [_lambda_record(r) for r in batch]})
            answers.append(answer)
            failures = answer.get("batchItemFailures") if isinstance(answer, dict) else None
            failed = {str(f.get("itemIdentifier")) for f in failures or []}
        for record in passed:
            sequence = record["dynamodb"]["SequenceNumber"]
            if sequence in failed:
                return False
            self._after[_shard_of(record)] = sequence
        return True

    def start(self, period: float = 0.5) -> None:
        """Poll in the background, as Lambda's event source mapping does."""

        def loop() -> None:
            failures = 0  # in a row: a batch that keeps failing is retried less and less often
            while not self._stop.wait(min(period * 2**failures, MAX_BACKOFF_SECONDS)):
                try:
                    delivered = self.poll()
                except Exception as exc:  # the poller outlives a failed poll, as Lambda's does
                    delivered = False
                    if self.on_error is not None:
                        self.on_error(exc)
                failures = 0 if delivered else min(failures + 1, 8)

        self._thread = threading.Thread(target=loop, name=f"stream-{self.table_name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _shard_of(record: dict[str, Any]) -> str:
    return str(record.get("_shard", "shard"))


def _lambda_record(record: dict[str, Any]) -> dict[str, Any]:
    """A stream record as Lambda hands it to the function (creation time in epoch seconds)."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record.get("eventID"),
        "eventName": record.get("eventName"),
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", "us-east-1"),
        "dynamodb": change,
        "eventSourceARN": record.get("eventSourceARN"),
    }


def _matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style filter matching, the subset Lambda's filter criteria use here: nested
    objects and lists of allowed scalar values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(
            k in value and _matches(p, value[k]) for k, p in pattern.items()
        )
    if isinstance(pattern, list):
        return value in pattern
    return bool(pattern == value)


def filter_patterns(event_properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``FilterCriteria`` patterns of a template event, parsed."""
    filters = (event_properties.get("FilterCriteria") or {}).get("Filters") or []
    return [json.loads(f["Pattern"]) for f in filters if "Pattern" in f]
