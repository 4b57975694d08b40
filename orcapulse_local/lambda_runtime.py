"""Runs the template's functions the way Lambda does, without containers.

Each function gets warm "containers": worker processes (see ``lambda_worker``) started on first
use with exactly the function's resolved environment, its code directory first on ``sys.path``
and its layers after it (``/opt/python``), the handler imported once and then invoked one event
at a time. Concurrent invocations of a function get more workers, up to its reserved concurrency.
A handler that runs past the function's ``Timeout`` has its worker killed, as Lambda does.

Separate processes rather than imports into the gateway: functions never share module state,
environment or caches, a crashing handler cannot take the gateway down, and what a function
imports is what Lambda would give it (its folder and its layers)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess  # runs only our own interpreter on our own worker script  # nosec B404
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

from orcapulse_local import config
from orcapulse_local.template import Context, function_environment, function_spec, resolve, resources_of_type

WORKER = Path(__file__).with_name("lambda_worker.py")
INIT_TIMEOUT_SECONDS = 10.0  # Lambda's limit for the init phase
DEFAULT_CONCURRENCY = 4
LogSink = Callable[[str, str], None]


def print_sink(function: str, line: str) -> None:
    """Write a function's log line to this process's stdout, tagged with the function."""
    sys.stdout.write(f"[{function}] {line}\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    layer_dirs: tuple[Path, ...]
    memory_mb: int
    timeout_seconds: float
    reserved_concurrency: int | None
    environment: dict[str, str]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{config.REGION}:{config.ACCOUNT_ID}:function:{self.name}"


def _layer_dir(content: Path) -> Path:
    # A layer that already has python/ is shipped as is; one built by a makefile (like ours) has
    # its directory copied into python/, so the directory itself is what lands on /opt/python.
    return content / "python" if (content / "python").is_dir() else content


def functions_from_template(
    template: dict[str, Any],
    ctx: Context,
    root: Path,
    overrides: dict[str, str] | None = None,
) -> dict[str, FunctionSpec]:
    """Every ``AWS::Serverless::Function`` of the template, resolved for ``ctx``; ``overrides``
    is laid over each function's environment."""
    layers = resources_of_type(template, "AWS::Serverless::LayerVersion")
    stack = ctx.pseudo("AWS::StackName") or "local"
    out: dict[str, FunctionSpec] = {}
    for logical in resources_of_type(template, "AWS::Serverless::Function"):
        spec = function_spec(template, logical)
        layer_dirs = []
        for ref in spec.get("Layers", []):
            name = ref.get("Ref") if isinstance(ref, dict) else None
            if name in layers:
                layer_dirs.append(_layer_dir(root / layers[name]["Properties"]["ContentUri"]))
        # A number, or a parameter (the webhook's WebhookReservedConcurrency).
        reserved = resolve(spec.get("ReservedConcurrentExecutions"), ctx)
        out[logical] = FunctionSpec(
            logical_id=logical,
            name=str(spec.get("FunctionName") or f"{stack}-{logical}"),
            code_dir=(root / spec["CodeUri"]).resolve(),
            handler=spec["Handler"],
            layer_dirs=tuple(d.resolve() for d in layer_dirs),
            memory_mb=int(spec.get("MemorySize", 128)),
            timeout_seconds=float(spec.get("Timeout", 3)),
            reserved_concurrency=int(reserved) if reserved is not None else None,
            environment={**function_environment(template, logical, ctx), **(overrides or {})},
            events=dict(spec.get("Events", {})),
        )
    return out


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation: ``result`` on success, else Lambda's error document."""

    function: str
    request_id: str
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class _Timeout(Exception):
    """The invocation outlived the function's configured timeout."""


class _InitError(Exception):
    """The handler's import failed; ``args[0]`` is Lambda's error document."""


class _Worker:
    def __init__(self, spec: FunctionSpec, sink: LogSink):
        self.spec = spec
        # One duplex connection (a socket pair): requests one way, replies the other, each message
        # framed by multiprocessing.connection.
        self._conn, child = Pipe()
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and worker script  # nosec B603
            [
                sys.executable,
                "-I",
                "-u",
                str(WORKER),
                str(child.fileno()),
                str(spec.code_dir),
                spec.handler,
                *(str(d) for d in spec.layer_dirs),
            ],
            env=_runtime_environment(spec),
            cwd=spec.code_dir,
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # A group of its own: Ctrl-C in a terminal reaches the stack, which stops its workers
            # itself, and never a worker still importing its handler.
            process_group=0,
        )
        child.close()
        self._ready = False
        threading.Thread(target=self._pump, args=(sink,), daemon=True).start()

    def _pump(self, sink: LogSink) -> None:
        if self.proc.stdout is None:
            raise RuntimeError("the worker was started without a stdout pipe")
        for raw in self.proc.stdout:
            sink(self.spec.logical_id, raw.decode("utf-8", "replace").rstrip("\n"))

    def _receive(self, timeout: float) -> dict[str, Any]:
        if not self._conn.poll(timeout):
            raise _Timeout
        document: dict[str, Any] = json.loads(self._conn.recv_bytes())  # EOFError: the worker exited
        return document

    def ensure_ready(self) -> None:
        """Wait for the init phase (the handler's import) to end, once; :class:`_InitError` if
        it failed."""
        if not self._ready:
            frame = self._receive(INIT_TIMEOUT_SECONDS)
            if "init_error" in frame:
                raise _InitError(frame["init_error"])
            self._ready = True

    def invoke(self, event: Any, context: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send one event; the worker's reply, or :class:`_Timeout` after ``timeout`` seconds."""
        self._conn.send_bytes(json.dumps({"event": event, "context": context}).encode())
        return self._receive(timeout)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Tell the worker to finish: EOF on its connection ends its loop."""
        self._conn.close()

    def stop(self, grace: float = 2.0) -> None:
        """Close, then wait ``grace`` seconds before killing the worker."""
        self.close()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _runtime_environment(spec: FunctionSpec) -> dict[str, str]:
    """The variables the Lambda runtime sets, then the function's own."""
    return {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{uuid.uuid4().hex}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": config.REGION,
        "AWS_DEFAULT_REGION": config.REGION,
        **spec.environment,
    }


class LambdaRuntime:
    """Invokes the functions of a template; workers are started on demand and stopped by
    :meth:`stop`."""

    def __init__(self, functions: dict[str, FunctionSpec], sink: LogSink = print_sink):
        self.functions = functions
        self._sink = sink
        # At most this many workers of a function are busy at once (its reserved concurrency).
        self._slots = {
            name: threading.BoundedSemaphore(spec.reserved_concurrency or DEFAULT_CONCURRENCY)
            for name, spec in functions.items()
        }
        self._idle: dict[str, list[_Worker]] = {name: [] for name in functions}
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._stopped = False

    @contextlib.contextmanager
    def _worker(self, spec: FunctionSpec) -> Iterator[_Worker]:
        """A ready worker of ``spec`` (an idle one, else a new one) for one use. It stays warm
        afterwards, unless the use raised: then it is killed, as Lambda drops a failed sandbox."""
        with self._slots[spec.logical_id]:
            with self._lock:
                if self._stopped:
                    raise RuntimeError("the local runtime is stopped")
                idle = self._idle[spec.logical_id] = [w for w in self._idle[spec.logical_id] if w.alive]
                worker = idle.pop() if idle else None
            if worker is None:
                worker = _Worker(spec, self._sink)
                with self._lock:
                    self._all.append(worker)
            try:
                worker.ensure_ready()
                yield worker
            except BaseException:
                worker.proc.kill()
                worker.stop(grace=0.5)
                raise
            with self._lock:
                if worker.alive and not self._stopped:
                    self._idle[spec.logical_id].append(worker)

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        """Invoke a function synchronously (``RequestResponse``)."""
        spec = self.functions[logical_id]
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        context = {
            "function_name": spec.name,
            "function_version": "$LATEST",
            "invoked_function_arn": spec.arn,
            "memory_limit_in_mb": spec.memory_mb,
            "aws_request_id": request_id,
            "log_group_name": f"/aws/lambda/{spec.name}",
            "log_stream_name": f"local/[$LATEST]{spec.logical_id}",
            "deadline_ms": int(time.time() * 1000 + spec.timeout_seconds * 1000),
        }
        try:
            with self._worker(spec) as worker:
                reply = worker.invoke(event, context, spec.timeout_seconds)
        except _InitError as exc:
            return Invocation(logical_id, request_id, error=exc.args[0])
        except _Timeout:
            message = f"Task timed out after {spec.timeout_seconds:.2f} seconds"
            self._sink(spec.logical_id, f"{request_id} {message}")
            error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
            return Invocation(
                logical_id, request_id, error=error, duration_ms=(time.monotonic() - started) * 1000
            )
        except (EOFError, OSError) as exc:
            error = {"errorType": "Runtime.ExitError", "errorMessage": f"the function exited: {exc}"}
            return Invocation(logical_id, request_id, error=error)
        duration = (time.monotonic() - started) * 1000
        if "error" in reply:
            return Invocation(logical_id, request_id, error=reply["error"], duration_ms=duration)
        return Invocation(logical_id, request_id, result=reply.get("result"), duration_ms=duration)

    def prewarm(self, names: list[str] | None = None) -> threading.Thread:
        """Start one warm worker per function in the background, one after the other, so the
        first request to each does not pay the cold start."""

        def warm() -> None:
            for name in names or list(self.functions):
                try:
                    with self._worker(self.functions[name]):
                        # Taking a worker starts it; handing it back keeps it warm in the pool.
                        continue
                except RuntimeError:
                    return  # stopped meanwhile
                except (_InitError, _Timeout, EOFError, OSError):
                    continue  # the function's first invocation reports it

        thread = threading.Thread(target=warm, name="prewarm", daemon=True)
        thread.start()
        return thread

    def warm(self, logical_id: str, count: int, *, at_once: int = 2) -> int:
        """Bring the function's pool up to ``count`` idle warm workers (at most its concurrency),
        started ``at_once`` at a time so their imports do not starve each other past the init
        limit: a load test's ramp-up, as provisioned concurrency would be. How many are warm."""
        spec = self.functions[logical_id]
        with self._lock:
            self._idle[logical_id] = [w for w in self._idle[logical_id] if w.alive]
            missing = min(count, spec.reserved_concurrency or DEFAULT_CONCURRENCY) - len(
                self._idle[logical_id]
            )
        while missing > 0 and not self._stopped:
            batch = [_Worker(spec, self._sink) for _ in range(min(at_once, missing))]
            missing -= len(batch)
            with self._lock:
                self._all.extend(batch)
            for worker in batch:
                try:
                    worker.ensure_ready()
                except (_InitError, _Timeout, EOFError, OSError):
                    worker.proc.kill()
                    worker.stop(grace=0.5)
                    continue
                with self._lock:
                    if not self._stopped:
                        self._idle[logical_id].append(worker)
        with self._lock:
            return len(self._idle[logical_id])

    def stop(self) -> None:
        """Stop every worker; invocations still running fail, later ones are refused."""
        with self._lock:
            self._stopped = True
            workers, self._all = self._all, []
            for idle in self._idle.values():
                idle.clear()
        for worker in workers:
            # Lambda gives an idle container no shutdown phase either; the logs are unbuffered.
            worker.close()
            with contextlib.suppress(OSError):
                worker.proc.terminate()
        for worker in workers:
            worker.stop()
