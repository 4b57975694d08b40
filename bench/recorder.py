"""Counts and times the round trips a request makes: AWS calls through the test suite's AWS call
interceptor (``tests.support.aws_calls``: every client, boto3's, PynamoDB's and Powertools' alike),
and TikTok calls at requests' transport adapter.

``install()`` once; then ``window()`` collects the calls of one request. ``Replay`` answers AWS
calls from a recording instead of sending them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests.adapters

from tests.support.aws_calls import Answer, AwsCall, Hook, clocks, intercepting


@dataclass(frozen=True)
class Call:
    kind: str  # "aws" or "http"
    target: str  # "dynamodb.PutItem" or "open.tiktokapis.com POST /v2/oauth/token/"
    seconds: float  # wall time inside the call
    cpu_seconds: float  # this process's CPU time inside the call (in-process fakes run here)


@dataclass
class Window:
    calls: list[Call] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole window
    cpu_seconds: float = 0.0  # CPU time of the whole window

    def of(self, kind: str) -> list[Call]:
        return [c for c in self.calls if c.kind == kind]

    @property
    def aws(self) -> list[str]:
        return [c.target for c in self.of("aws")]

    @property
    def http(self) -> list[str]:
        return [c.target for c in self.of("http")]

    @property
    def own_seconds(self) -> float:
        """Wall time of the window minus the wall time inside calls."""
        return self.seconds - sum(c.seconds for c in self.calls)

    @property
    def own_cpu_seconds(self) -> float:
        """CPU time of the window minus the CPU time inside calls: what our code (and the
        libraries it drives) costs, however busy the machine is."""
        return self.cpu_seconds - sum(c.cpu_seconds for c in self.calls)


class Recorder(Hook):
    def __init__(self) -> None:
        self._windows: list[Window] = []
        self._lock = threading.Lock()
        self._installed: contextlib.ExitStack | None = None

    # -- AWS -------------------------------------------------------------------------------------
    def install(self) -> None:
        """Record every AWS call until ``uninstall``. The interceptor sees the clients created
        after it is installed, so install before the first stack starts (each starts cold)."""
        if self._installed is not None:
            return
        self._installed = contextlib.ExitStack()
        self._installed.enter_context(intercepting(self))

    def uninstall(self) -> None:
        if self._installed is not None:
            self._installed.close()
            self._installed = None

    def after(self, call: AwsCall, answer: Answer) -> None:
        self._add(Call("aws", call.name, call.seconds, call.cpu_seconds))

    def failed(self, call: AwsCall, error: BaseException) -> None:
        self._add(Call("aws", call.name, call.seconds, call.cpu_seconds))

    # -- HTTP ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def http(self) -> Iterator[None]:
        """Wrap requests' transport adapter (whatever it currently is: the real one or a test
        double installed by ``responses``) for the duration of the block."""
        current = requests.adapters.HTTPAdapter.send
        recorder = self

        def send(adapter: requests.adapters.HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
            started = clocks()
            try:
                return current(adapter, request, *args, **kwargs)
            finally:
                wall, cpu = clocks()
                url = urlsplit(request.url)
                target = f"{url.hostname} {request.method} {url.path}"
                recorder._add(Call("http", target, wall - started[0], cpu - started[1]))

        requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            requests.adapters.HTTPAdapter.send = current  # type: ignore[method-assign]

    # -- windows ---------------------------------------------------------------------------------
    def _add(self, call: Call) -> None:
        with self._lock:
            for window in self._windows:
                window.calls.append(call)

    @contextlib.contextmanager
    def window(self) -> Iterator[Window]:
        window = Window()
        with self._lock:
            self._windows.append(window)
        started = clocks()
        try:
            yield window
        finally:
            wall, cpu = clocks()
            window.seconds, window.cpu_seconds = wall - started[0], cpu - started[1]
            with self._lock:
                self._windows.remove(window)


class Replay(Hook):
    """While ``replaying``, answers each AWS operation with the answer it last received while
    recording, and sends nothing (botocore still builds each request, as it would in Lambda)."""

    def __init__(self) -> None:
        self.answers: dict[str, Answer] = {}
        self.replaying = False

    def before(self, call: AwsCall) -> Answer | None:
        return self.answers[call.operation] if self.replaying else None

    def after(self, call: AwsCall, answer: Answer) -> None:
        if not self.replaying:
            self.answers[call.operation] = answer
