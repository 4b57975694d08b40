"""One local stack for this package's tests, on free 127.0.0.1 ports, with an integration and a
few leads so listings have items; stopped when the package is done (so its threads are gone before
other tests mock AWS in-process)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orcapulse_local.config import Ports
from orcapulse_local.load import connect
from orcapulse_local.stack import LocalStack

WORKSPACE = "ws-contract"


@pytest.fixture(scope="package")
def stack() -> Iterator[LocalStack]:
    """A stack with an integration and a few leads, so listings have items to conform."""
    local = LocalStack(Ports.ephemeral(), log_sink=None, run_schedules=False)
    local.start()
    try:
        assert local.emulator is not None
        open_id = local.emulator.state.add_account(display_name="Contract Shop").open_id
        connect(local, WORKSPACE, open_id)
        for kind in ("comment", "dm", "high_intent"):
            delivery = local.emulator.send_event(kind, open_id, f"contract {kind}")
            assert delivery.status == 200, delivery.summary()
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="package")
def bearer(stack: LocalStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.dev_token(WORKSPACE, 'contract-user')}"}
