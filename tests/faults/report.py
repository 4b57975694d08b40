"""The fault matrix's summary: each faulted run of ``test_fault_then_clean_retry`` hands its row to
its test report (``user_properties``), so the rows reach the process that prints the summary
whether the tests ran in it or on pytest-xdist workers. ``tests/conftest.py`` calls
:func:`collect` for every report and :func:`summary` at the end of the run (the xdist controller
loads that conftest, not this package's)."""

from __future__ import annotations

import os
from typing import Any, cast

import pytest

FULL = os.environ.get("ORCAPULSE_FAULTS", "").lower() == "full"
_PROPERTY = "fault_matrix_row"
ROWS: list[dict[str, Any]] = []


def record(node: pytest.Item, row: dict[str, Any]) -> None:
    """Report ``row`` (filled in as the test goes) with ``node``'s result."""
    node.user_properties.append((_PROPERTY, row))


def collect(report: pytest.TestReport) -> None:
    if report.when == "call":
        ROWS.extend(
            cast(dict[str, Any], value) for name, value in report.user_properties if name == _PROPERTY
        )


def summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    from tests.faults.harness import SCENARIOS

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
