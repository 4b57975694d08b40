"""A local stack of the load test's own, on free 127.0.0.1 ports, stopped when the package is done
(so its threads are gone before other tests mock AWS in-process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orcapulse_local.config import Ports
from orcapulse_local.stack import LocalStack


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    with LocalStack(Ports.ephemeral(), log_sink=None, run_schedules=False) as local:
        yield local
