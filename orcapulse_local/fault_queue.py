"""Queued faults of an emulated TikTok API for Business: the next answers of an endpoint replaced by
TikTok's error envelope (HTTP 200 with a non-zero ``code``) or by a timeout. Shared by the emulated
Accounts API (``business_state``) and Marketing API (``ads_state``), and the tests' fakes of both."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, ClassVar


class FaultQueue:
    """Mixed into a state holding ``calls`` (a Counter), ``faults`` (endpoint → queued answers) and
    ``lock``; ``DEFAULT_FAULT`` is the ``(code, message)`` a bare ``fail_next`` queues."""

    DEFAULT_FAULT: ClassVar[tuple[int, str]] = (50000, "Internal error")
    calls: Counter[str]
    faults: dict[str, list[Any]]
    lock: threading.RLock

    def fail_next(
        self, endpoint: str, code: int | None = None, message: str | None = None, times: int = 1
    ) -> None:
        """The next ``times`` calls of ``endpoint`` answer TikTok's error ``code`` with HTTP 200."""
        body = {"code": code or self.DEFAULT_FAULT[0], "message": message or self.DEFAULT_FAULT[1]}
        self.faults.setdefault(endpoint, []).extend(dict(body) for _ in range(times))

    def timeout_next(self, endpoint: str, times: int = 1) -> None:
        """The next ``times`` calls of ``endpoint`` never answer."""
        self.faults.setdefault(endpoint, []).extend("timeout" for _ in range(times))

    def take_fault(self, endpoint: str) -> Any:
        """Count a call of ``endpoint``; the fault queued for it (a body dict or "timeout"), if any."""
        with self.lock:
            self.calls[endpoint] += 1
            queued = self.faults.get(endpoint) or []
            return queued.pop(0) if queued else None
