"""One warm "container" of a Lambda function: runs in its own interpreter (started with ``-I``, so
nothing of the caller's ``sys.path`` leaks in), puts the function's code and its layers on the path
the way Lambda does (``/var/task`` first, then ``/opt/python``), imports the handler once (the init
phase) and then serves invocations one at a time over two pipes.

Frames are a 4-byte big-endian length and a JSON document. Standard library only: this file must
not import anything that the function itself would not see on Lambda."""

import importlib
import json
import os
import signal
import struct
import sys
import time
import traceback

_HEADER = struct.Struct(">I")


def _read_exact(fd, size):
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd):
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exact(fd, _HEADER.unpack(header)[0])
    return None if body is None else json.loads(body)


def write_frame(fd, document):
    body = json.dumps(document).encode()
    data = _HEADER.pack(len(body)) + body
    while data:
        data = data[os.write(fd, data) :]


class LambdaContext:
    """The ``context`` object of the Python runtime."""

    def __init__(self, spec):
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

    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(exc):
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def main(argv):
    requests_fd, responses_fd, code_dir, handler = int(argv[1]), int(argv[2]), argv[3], argv[4]
    layer_dirs = argv[5:]
    # Ctrl-C reaches the whole process group; the stack stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.path[:0] = [code_dir, *layer_dirs]
    os.chdir(code_dir)
    module_name, _, function_name = handler.rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        write_frame(responses_fd, {"ready": True})
    except Exception as exc:
        traceback.print_exc()
        write_frame(responses_fd, {"init_error": _error(exc)})
        return 1
    while True:
        request = read_frame(requests_fd)
        if request is None:
            return 0
        try:
            result = function(request["event"], LambdaContext(request["context"]))
            try:
                json.dumps(result)
            except (TypeError, ValueError) as exc:
                raise RuntimeError(f"Unable to marshal response: {exc}") from None
            reply = {"result": result}
        except Exception as exc:
            print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc()
            reply = {"error": _error(exc)}
        sys.stdout.flush()
        sys.stderr.flush()
        write_frame(responses_fd, reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
