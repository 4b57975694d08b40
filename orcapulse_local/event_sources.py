"""The template's non-HTTP event sources, run locally:

- :class:`Scheduler` runs ``ScheduleV2``/``Schedule`` events with a ``rate(...)`` expression,
  invoked with the schedule's ``Input`` (Scheduler placeholders filled in);
- :class:`StreamMappings` runs ``DynamoDB`` events: a :class:`~orcapulse_local.streams.StreamSource`
  per event reads the table's stream and invokes the function with the event's ``BatchSize`` and
  ``FilterCriteria``, as Lambda's event source mapping does.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orcapulse_local.aws_server import client
from orcapulse_local.lambda_runtime import FunctionSpec, Invocation, LambdaRuntime
from orcapulse_local.streams import StreamSource, filter_patterns
from orcapulse_local.template import Context, resolve

Log = Callable[[str], None]


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


# -- DynamoDB streams ----------------------------------------------------------------------------------
# Lambda polls a stream shard about four times a second; a batching window lets it wait longer.
MIN_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class StreamEvent:
    """A ``Type: DynamoDB`` event of a function: which table's stream feeds it, and how."""

    function: str
    name: str  # the event's key under the function's Events
    table: str  # the table's logical id
    batch_size: int
    window_seconds: float
    patterns: tuple[dict[str, Any], ...]

    @property
    def key(self) -> str:
        return f"{self.function}.{self.name}"


def stream_events(functions: dict[str, FunctionSpec], ctx: Context) -> list[StreamEvent]:
    """Every ``DynamoDB`` event of the functions, its ``Stream`` traced back to its table."""
    tables = {r["StreamArn"]: logical for logical, r in ctx.resources.items() if "StreamArn" in r}
    out = []
    for spec in functions.values():
        for name, event in spec.events.items():
            if event.get("Type") != "DynamoDB":
                continue
            props = resolve(event.get("Properties", {}), ctx)
            if props.get("Enabled") is False:
                continue
            table = tables.get(props.get("Stream"))
            if table is None:
                raise ValueError(f"{spec.logical_id}.{name}: its Stream is not a table of the template")
            out.append(
                StreamEvent(
                    function=spec.logical_id,
                    name=name,
                    table=table,
                    batch_size=int(props.get("BatchSize", 100)),
                    window_seconds=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                    patterns=tuple(filter_patterns(props)),
                )
            )
    return out


class StreamMappings:
    """One polling :class:`StreamSource` per ``DynamoDB`` event; ``pump`` delivers what is
    pending now. A failed invocation is retried from its batch's first record on the next poll
    (no record is skipped); a partial batch answer from the first record it names."""

    def __init__(
        self,
        events: list[StreamEvent],
        tables: dict[str, str],
        runtime: LambdaRuntime,
        aws_url: str,
        log: Log,
    ):
        self.events = {e.key: e for e in events}
        self.runtime = runtime
        self.log = log
        self.sources = {
            e.key: StreamSource(
                client("dynamodb", aws_url),
                client("dynamodbstreams", aws_url),
                tables[e.table],
                self._invoker(e),
                patterns=list(e.patterns),
                batch_size=e.batch_size,
                on_error=self._reporter(e.key),
            )
            for e in events
        }

    def _reporter(self, key: str) -> Callable[[BaseException], None]:
        return lambda exc: self.log(f"{key}: polling the stream failed: {exc}")

    def _invoker(self, event: StreamEvent) -> Callable[[dict[str, Any]], Any]:
        def invoke(batch: dict[str, Any]) -> Any:
            outcome: Invocation = self.runtime.invoke(event.function, batch)
            if outcome.ok:
                return outcome.result
            error = outcome.error or {}
            self.log(
                f"{event.key}: the function failed on a batch of {len(batch['Records'])}"
                f" ({error.get('errorType')}: {error.get('errorMessage')}); it is retried"
            )
            first = batch["Records"][0]["dynamodb"]["SequenceNumber"]
            return {"batchItemFailures": [{"itemIdentifier": first}]}

        return invoke

    def start(self) -> None:
        for key, source in self.sources.items():
            source.start(max(self.events[key].window_seconds, MIN_POLL_SECONDS))

    def pump(self) -> None:
        """Deliver every record pending on every stream now (the pollers would, shortly)."""
        for key, source in self.sources.items():
            try:
                source.pump()
            except Exception as exc:  # reported like a failed poll
                self._reporter(key)(exc)

    def stop(self) -> None:
        for source in self.sources.values():
            source.stop()
