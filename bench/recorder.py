"""Counts and times the round trips a request makes: AWS calls at botocore's API call, for every
client (boto3's, PynamoDB's and Powertools' alike, however long they have been cached), and TikTok
calls at requests' transport adapter.

``install()`` once; then ``window()`` collects the calls of one request.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests.adapters
from botocore.client import BaseClient


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


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


class Recorder:
    def __init__(self) -> None:
        self._windows: list[Window] = []
        self._lock = threading.Lock()
        self._original_call: Any = None

    # -- AWS -------------------------------------------------------------------------------------
    def install(self) -> None:
        """Wrap botocore's API call. Event hooks would only reach clients created afterwards, and
        the functions keep clients cached per container (PynamoDB's connections, Powertools'
        parameter providers), so the one place that sees every call is the call itself."""
        if self._original_call is not None:
            return
        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        recorder = self

        def make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            started = _clocks()
            try:
                return original(client, operation_name, api_params)
            finally:
                wall, cpu = _clocks()
                target = f"{client.meta.service_model.service_name}.{operation_name}"
                recorder._add(Call("aws", target, wall - started[0], cpu - started[1]))

        self._original_call = original
        BaseClient._make_api_call = make_api_call  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        if self._original_call is not None:
            BaseClient._make_api_call = self._original_call  # type: ignore[attr-defined]
            self._original_call = None

    # -- HTTP ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def http(self) -> Iterator[None]:
        """Wrap requests' transport adapter (whatever it currently is: the real one or a test
        double installed by ``responses``) for the duration of the block."""
        current = requests.adapters.HTTPAdapter.send
        recorder = self

        def send(adapter: requests.adapters.HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
            started = _clocks()
            try:
                return current(adapter, request, *args, **kwargs)
            finally:
                wall, cpu = _clocks()
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
        started = _clocks()
        try:
            yield window
        finally:
            wall, cpu = _clocks()
            window.seconds, window.cpu_seconds = wall - started[0], cpu - started[1]
            with self._lock:
                self._windows.remove(window)
