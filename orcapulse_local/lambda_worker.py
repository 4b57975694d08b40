"""One warm "container" of a Lambda function: runs in its own interpreter (started with ``-I``, so
nothing of the caller's ``sys.path`` leaks in), puts the function's code and its layers on the path
the way Lambda does (``/var/task`` first, then ``/opt/python``), imports the handler once (the init
phase) and then serves invocations one at a time over a ``multiprocessing.connection`` socket pair,
one JSON document a message (JSON, not pickle: a result must be what Lambda could marshal).

Standard library only: this file must not import anything that the function itself would not see
on Lambda."""

import importlib
import json
import os
import sys
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any


class LambdaContext:
    """The ``context`` object of the Python runtime."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.function_name = spec["function_name"]
        self.function_version = spec["function_version"]
        self.invoked_function_arn = spec["invoked_function_arn"]
        self.memory_limit_in_mb = spec["memory_limit_in_mb"]
        self.aws_request_id = spec["aws_request_id"]
        self.log_group_name = spec["log_group_name"]
        self.log_stream_name = spec["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline_ms = spec["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the invocation's timeout."""
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _send(conn: Connection, document: dict[str, Any]) -> None:
    conn.send_bytes(json.dumps(document).encode())


def main(argv: list[str]) -> int:
    """Import the handler, then answer invocations until the runtime closes the connection."""
    conn, code_dir, handler, layer_dirs = Connection(int(argv[1])), argv[2], argv[3], argv[4:]
    sys.path[:0] = [code_dir, *layer_dirs]
    os.chdir(code_dir)
    module_name, _, function_name = handler.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # the init error is reported to the runtime, as Lambda does
        traceback.print_exc()
        _send(conn, {"init_error": _error(exc)})
        return 1
    _send(conn, {"ready": True})
    while True:
        try:
            request = json.loads(conn.recv_bytes())
        except EOFError:
            return 0
        try:
            result = function(request["event"], LambdaContext(request["context"]))
            try:
                json.dumps(result)
            except (TypeError, ValueError) as exc:
                raise RuntimeError(f"Unable to marshal response: {exc}") from None
            reply = {"result": result}
        except Exception as exc:  # a handler error is the invocation's error document
            print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc()
            reply = {"error": _error(exc)}
        sys.stdout.flush()
        sys.stderr.flush()
        _send(conn, reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
