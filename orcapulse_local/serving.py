"""The loopback HTTP servers of the local stack (gateway, TikTok emulator): a threading server
bound at construction, so its URL is known before it serves, and run on a daemon thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer[Owner](ThreadingHTTPServer):
    """``owner`` is the object the request handlers serve (``self.server.owner``)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: Owner, name: str
    ) -> None:
        super().__init__(address, handler)
        self.owner = owner
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, args=(0.1,), name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        # shutdown() waits for serve_forever() to finish: never call it if it never started (a
        # stack whose start-up failed half-way would hang here instead of reporting the failure).
        if self._thread is not None:
            self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join()
