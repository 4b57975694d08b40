"""The template's non-HTTP event sources, run locally: :class:`Scheduler` runs
``ScheduleV2``/``Schedule`` events with a ``rate(...)`` expression, invoked with the schedule's
``Input`` (Scheduler placeholders filled in).
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

from orcapulse_local.lambda_runtime import FunctionSpec, LambdaRuntime
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
