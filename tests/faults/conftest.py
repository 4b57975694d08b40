"""The fault matrix is generated while pytest collects it: each scenario runs once without faults
and its recorded sequence of outside calls becomes the matrix's rows.

``make test`` runs every call position with one fault kind, the kinds rotating along the
sequence, and with ``lost`` (the call took effect, its answer never came back), which is what
every compensation must survive; ``make faults`` (``ORCAPULSE_FAULTS=full``) runs every position
with every kind that applies to it (AWS: throttle, 5xx, timeout, lost; TikTok: 5xx, timeout, lost)
and prints the matrix."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pytest

from tests.faults.harness import SCENARIOS, record_baseline
from tests.faults.report import FULL
from tests.support.faults import LOST, Call


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
