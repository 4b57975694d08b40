"""The fault matrix is generated while pytest collects it: each scenario runs once without faults
and its recorded sequence of outside calls becomes the matrix's rows.

``make test`` runs every call position with one fault kind, the kinds rotating along the
sequence, and with ``lost`` (the call took effect, its answer never came back), which is what
every compensation must survive; ``make faults`` (``ORCAPULSE_FAULTS=full``) runs every position
with every kind that applies to it (AWS: throttle, 5xx, timeout, lost; TikTok: 5xx, timeout, lost)
and prints the matrix."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest

from tests.faults.harness import SCENARIOS, record_baseline
from tests.support.faults import LOST, Call

FULL = os.environ.get("ORCAPULSE_FAULTS", "").lower() == "full"


@dataclass(frozen=True)
class Case:
    path: str
    k: int
    fault: str
    baseline: tuple[Call, ...]

    @property
    def call(self) -> Call:
        return self.baseline[self.k]

    @property
    def id(self) -> str:
        return f"{self.path}-{self.k + 1:02d}-{self.call.label}-{self.fault}"


@cache
def baseline(path: str) -> tuple[Call, ...]:
    return tuple(record_baseline(SCENARIOS[path]))


def cases(full: bool = FULL) -> list[Case]:
    out: list[Case] = []
    for path in SCENARIOS:
        calls = baseline(path)
        for k, call in enumerate(calls):
            rotating = call.faults[k % (len(call.faults) - 1)]  # lost is run at every position
            kinds = call.faults if full else (rotating, LOST)
            out.extend(Case(path, k, fault, calls) for fault in kinds)
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        generated = cases()
        metafunc.parametrize("case", generated, ids=[c.id for c in generated])
    if "path" in metafunc.fixturenames:
        metafunc.parametrize("path", list(SCENARIOS))


ROWS: list[dict[str, Any]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    write = terminalreporter.write_line
    positions = {(r["path"], r["k"]) for r in ROWS}
    failed = [r for r in ROWS if not r["ok"]]
    write(
        f"fault matrix: {len(ROWS)} faulted runs over {len(positions)} call positions "
        f"({'every fault kind' if FULL else 'a rotating fault kind and lost at each'}); {len(failed)} failed"
    )
    if not (FULL or os.environ.get("ORCAPULSE_FAULT_MATRIX") or failed):
        return
    header = ("path", "k", "call", "fault", "answer", "invariants", "clean retry")
    rows = [
        (r["path"], str(r["k"]), r["call"], r["fault"], r["answer"], r["invariants"], r["retry"])
        for r in sorted(ROWS, key=lambda r: (list(SCENARIOS).index(r["path"]), r["k"], r["fault"]))
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    write("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    write("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        write("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
