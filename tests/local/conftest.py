"""The local stack, started once for this package's slow tests and stopped when they are done (so
its threads are gone before other tests mock AWS in-process), on free ports with every function's
logs kept; and a check after each test that no code or token the TikTok emulator issued reached a
function log."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orcapulse_local.config import Ports
from orcapulse_local.stack import LocalStack


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    with LocalStack(Ports.ephemeral(), log_sink=None, run_schedules=False) as local:
        yield local


@pytest.fixture
def live(stack: LocalStack) -> Iterator[LocalStack]:
    """The shared stack; afterwards, the function logs must hold none of the emulator's secrets."""
    yield stack
    assert stack.emulator is not None
    issued = [*stack.emulator.state.issued, *stack.emulator.business.state.issued]
    text = "\n".join(line for _, line in list(stack.logs))
    leaked = [s for s in issued if s in text]
    assert not leaked, f"{len(leaked)} issued code(s)/token(s) appear in the function logs"
