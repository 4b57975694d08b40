"""The template's non-HTTP event sources, run locally.

- :class:`StreamPoller` — a DynamoDB stream event source mapping: reads the table's stream
  (``orcapulse_local.streams``), drops records its ``FilterCriteria`` reject, invokes the function
  in batches of ``BatchSize`` and honours ``ReportBatchItemFailures`` (retry from the first failed
  record) and ``MaximumRetryAttempts``, after which the batch goes to the ``OnFailure`` queue.
- :class:`Scheduler` — ``ScheduleV2``/``Schedule`` events with a ``rate(...)`` expression, invoked
  with the schedule's ``Input`` (Scheduler placeholders filled in).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orcapulse_local.lambda_runtime import FunctionSpec, LambdaRuntime
from orcapulse_local.template import Context, resolve

Log = Callable[[str], None]
RETRY_DELAY_SECONDS = 1.0


# -- event filtering (the subset of EventBridge patterns that Lambda filters use) --------------------
def matches(pattern: Any, value: Any) -> bool:
    """Whether ``value`` matches a Lambda filter ``pattern``."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(_field_matches(rule, value.get(key), key in value) for key, rule in pattern.items())
    return bool(pattern == value)


def _field_matches(rule: Any, value: Any, present: bool) -> bool:
    if isinstance(rule, dict):
        return present and matches(rule, value)
    if not isinstance(rule, list):
        return bool(rule == value)
    for option in rule:
        if isinstance(option, dict):
            if "exists" in option and bool(option["exists"]) == present:
                return True
            if "prefix" in option and isinstance(value, str) and value.startswith(option["prefix"]):
                return True
            if "anything-but" in option and present:
                excluded = option["anything-but"]
                excluded = excluded if isinstance(excluded, list) else [excluded]
                if value not in excluded:
                    return True
        elif present and (value == option or (isinstance(value, list) and option in value)):
            return True
    return False


def record_passes(filters: list[dict[str, Any]], record: dict[str, Any]) -> bool:
    """A record is delivered when it matches any filter (no filters: every record)."""
    if not filters:
        return True
    return any(matches(json.loads(f["Pattern"]), record) for f in filters)


# -- DynamoDB streams ------------------------------------------------------------------------------------
@dataclass
class StreamMapping:
    function: str
    table_logical_id: str
    table_name: str
    start: str
    batch_size: int
    max_retries: int
    report_item_failures: bool
    filters: list[dict[str, Any]]
    on_failure_queue: str | None  # physical queue name

    @classmethod
    def from_event(cls, function: FunctionSpec, props: dict[str, Any], ctx: Context) -> StreamMapping:
        stream = props["Stream"]
        table = stream["Fn::GetAtt"][0] if isinstance(stream, dict) and "Fn::GetAtt" in stream else None
        if table is None:
            raise ValueError(f"{function.logical_id}: only streams of the template's tables run locally")
        destination = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
        queue = None
        if isinstance(destination, dict) and "Fn::GetAtt" in destination:
            queue = ctx.resources[destination["Fn::GetAtt"][0]].get("QueueName")
        return cls(
            function=function.logical_id,
            table_logical_id=table,
            table_name=ctx.resources[table]["Ref"],
            start=str(props.get("StartingPosition", "LATEST")),
            batch_size=int(props.get("BatchSize", 100)),
            max_retries=int(props.get("MaximumRetryAttempts", -1)),
            report_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
            filters=list(resolve((props.get("FilterCriteria") or {}).get("Filters") or [], ctx)),
            on_failure_queue=queue,
        )


def stream_mappings(functions: dict[str, FunctionSpec], ctx: Context) -> list[StreamMapping]:
    return [
        StreamMapping.from_event(spec, event["Properties"], ctx)
        for spec in functions.values()
        for event in spec.events.values()
        if event.get("Type") == "DynamoDB"
    ]


@dataclass
class StreamPoller:
    """Feeds one function from one table's stream, in a background thread."""

    mapping: StreamMapping
    runtime: LambdaRuntime
    endpoint_url: str
    region: str
    log: Log
    interval: float = 0.25
    delivered: int = 0
    dead_lettered: int = 0
    _pending: list[dict[str, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _idle: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        from orcapulse_local.streams import StreamReader

        reader = StreamReader(
            self.mapping.table_name,
            start=self.mapping.start,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
        )
        self._thread = threading.Thread(target=self._run, args=(reader,), name="stream-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every record written so far has been handled (tests, the demo)."""
        self._idle.clear()
        return self._idle.wait(timeout)

    def _run(self, reader: Any) -> None:
        from orcapulse_local.streams import lambda_event

        attempts = 0
        while not self._stop.is_set():
            try:
                fresh = [r for r in reader.poll() if record_passes(self.mapping.filters, r)]
            except Exception as exc:  # the endpoint going away at shutdown, mostly
                if self._stop.is_set():
                    return
                self.log(f"stream poll failed: {type(exc).__name__}")
                self._stop.wait(1.0)
                continue
            self._pending.extend(fresh)
            if not self._pending:
                self._idle.set()
                self._stop.wait(self.interval)
                continue
            batch = self._pending[: self.mapping.batch_size]
            outcome = self.runtime.invoke(self.mapping.function, lambda_event(batch, reader.stream_arn))
            done = self._completed(batch, outcome)
            if done == len(batch):
                attempts = 0
                self.delivered += done
                del self._pending[:done]
                continue
            attempts += 1
            self.delivered += done
            del self._pending[:done]
            if 0 <= self.mapping.max_retries < attempts:
                failed = self._pending[: self.mapping.batch_size - done]
                self._dead_letter(failed, attempts, reader.stream_arn)
                del self._pending[: len(failed)]
                attempts = 0
            else:
                self._stop.wait(RETRY_DELAY_SECONDS)

    def _completed(self, batch: list[dict[str, Any]], outcome: Any) -> int:
        """How many records from the start of the batch are done (Lambda's checkpoint)."""
        if not outcome.ok:
            self.log(f"{self.mapping.function} failed on a batch of {len(batch)}; retrying")
            return 0
        result = outcome.result
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        if not self.mapping.report_item_failures or not failures:
            return len(batch)
        sequence = [r.get("dynamodb", {}).get("SequenceNumber") for r in batch]
        failed = [
            sequence.index(f.get("itemIdentifier")) for f in failures if f.get("itemIdentifier") in sequence
        ]
        if len(failed) != len(failures):
            return 0  # an unknown identifier fails the whole batch, as Lambda does
        return min(failed)

    def _dead_letter(self, records: list[dict[str, Any]], attempts: int, stream_arn: str) -> None:
        self.dead_lettered += len(records)
        self.log(f"{self.mapping.function}: {len(records)} record(s) sent to the on-failure queue")
        if not self.mapping.on_failure_queue or not records:
            return
        from orcapulse_local.aws_server import client

        sqs = client("sqs", self.endpoint_url)
        dynamodb = [r.get("dynamodb", {}) for r in records]
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.runtime.functions[self.mapping.function].arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": "local",
                "startSequenceNumber": dynamodb[0].get("SequenceNumber"),
                "endSequenceNumber": dynamodb[-1].get("SequenceNumber"),
                "batchSize": len(records),
                "streamArn": stream_arn,
            },
        }
        url = sqs.get_queue_url(QueueName=self.mapping.on_failure_queue)["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(message, default=str))


# -- schedules -----------------------------------------------------------------------------------------
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int | None:
    """Seconds between runs of a ``rate(...)`` expression; None for ``cron(...)``/``at(...)``."""
    m = _RATE.match(expression.strip())
    if m is None:
        return None
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2).rstrip("s")]


@dataclass
class Schedule:
    function: str
    kind: str  # ScheduleV2 or Schedule
    expression: str
    input: str | None

    def event(self) -> Any:
        """The event the scheduler sends for one run."""
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        run_id = str(uuid.uuid4())
        if self.input is not None:
            text = self.input.replace("<aws.scheduler.execution-id>", run_id)
            text = text.replace("<aws.scheduler.scheduled-time>", now)
            return json.loads(text)
        if self.kind == "Schedule":
            return {
                "version": "0",
                "id": run_id,
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "time": now,
                "region": "us-east-1",
                "resources": [],
                "detail": {},
            }
        return {}


def schedules(functions: dict[str, FunctionSpec], ctx: Context) -> list[Schedule]:
    out = []
    for spec in functions.values():
        for event in spec.events.values():
            if event.get("Type") in ("ScheduleV2", "Schedule"):
                props = resolve(event.get("Properties", {}), ctx)
                out.append(
                    Schedule(
                        spec.logical_id,
                        event["Type"],
                        props["Schedule" if event["Type"] == "Schedule" else "ScheduleExpression"],
                        props.get("Input"),
                    )
                )
    return out


class Scheduler:
    """Runs each ``rate(...)`` schedule every period; ``run_now`` runs one on demand."""

    def __init__(self, entries: list[Schedule], runtime: LambdaRuntime, log: Log):
        self.entries = {e.function: e for e in entries}
        self.runtime = runtime
        self.log = log
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for entry in self.entries.values():
            period = rate_seconds(entry.expression)
            if period is None:
                self.log(f"{entry.function}: {entry.expression} does not run locally (only rate(...))")
                continue
            thread = threading.Thread(target=self._loop, args=(entry, period), name="scheduler", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _loop(self, entry: Schedule, period: int) -> None:
        while not self._stop.wait(period):
            self.run_now(entry.function)

    def run_now(self, function: str) -> Any:
        outcome = self.runtime.invoke(function, self.entries[function].event())
        self.log(f"{function} ran on schedule: {'ok' if outcome.ok else 'failed'}")
        return outcome

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
