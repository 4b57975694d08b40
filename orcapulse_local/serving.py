"""The loopback HTTP servers of the local stack (gateway, TikTok emulator) on Werkzeug's threaded
WSGI server: bound at construction, so the URL is known before it serves, and run on a daemon
thread. A busy port is reported naming the port and its variable; a client that hangs up
mid-request is not an error; ``access_log`` gets one short line per request."""

from __future__ import annotations

import errno
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.serving import WSGIRequestHandler, make_server

from orcapulse_local import config

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

AccessLog = Callable[[str], None]


class PortInUseError(OSError):
    """The port a server was asked to listen on is taken."""


def bind(host: str, port: int, role: str) -> socket.socket:
    """A listening socket on ``host:port``. Werkzeug's own bind exits the process on a busy port,
    so the local stack binds first and reports which setting to change."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            variable = config.PORT_VARIABLES[role]
            raise PortInUseError(
                exc.errno, f"port {port} ({variable}) is already in use; set {variable} to another port"
            ) from None
        raise
    sock.listen(128)
    return sock


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Werkzeug's request log is replaced by :func:`_logged` (short, and without queries)."""


def _logged(app: WSGIApplication, log: AccessLog) -> WSGIApplication:
    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        # The path only: query strings may carry OAuth codes and states.
        path = str(environ.get("RAW_URI") or environ.get("PATH_INFO", "")).split("?", 1)[0]

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            ms = (time.monotonic() - started) * 1000
            log(f"{environ['REQUEST_METHOD']} {path} {status.split(' ', 1)[0]} {ms:.0f}ms")
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return wrapped


class LocalServer:
    """``app`` served on ``host:port`` (port 0 takes a free one); ``role`` (api, tiktok) names the
    port's variable in errors."""

    def __init__(
        self, app: WSGIApplication, host: str, port: int, role: str, access_log: AccessLog | None = None
    ) -> None:
        sock = bind(host, port, role)
        if access_log is not None:
            app = _logged(app, access_log)
        try:
            self._server = make_server(
                host, port, app, threaded=True, request_handler=_QuietHandler, fd=sock.fileno()
            )
        finally:
            sock.close()  # Werkzeug serves a duplicate of the descriptor
        self._role = role
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return config.url(port, host)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name=self._role, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        # shutdown() waits for serve_forever() to finish: never call it if it never started (a
        # stack whose start-up failed half-way would hang here instead of reporting the failure).
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
