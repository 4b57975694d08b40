"""One cold-import sample, run as a script in a fresh interpreter started with ``-S -s`` (no site
packages): the caller passes the exact ``sys.path`` a Lambda container would have (function code,
layer, runtime-provided packages), so nothing from the development environment leaks in.

Standard library only. Prints one JSON object on stdout.

  probe.py handler PATH_JSON          import ``app``; report the time and every module it loaded
  probe.py modules PATH_JSON NAMES    import the listed modules, in order; report the time

Times are wall (``perf_counter``) and this process's CPU time (``process_time``); an import from
the page cache is CPU-bound, and CPU time does not count what other processes on a busy machine
take from it.
"""

from __future__ import annotations

import importlib
import json
import sys
import time


def _set_path(paths: list[str]) -> None:
    # The script's own directory comes first on sys.path; the stdlib entries follow it.
    stdlib = [p for p in sys.path[1:] if p]
    sys.path[:] = [*paths, *stdlib]


def _origin(name: str, roots: list[str]) -> str:
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None) or ""
    for index, root in enumerate(roots):
        if path.startswith(root.rstrip("/") + "/"):
            return str(index)
    return "stdlib"


class _RequestOrder:
    """A meta-path finder that finds nothing and only notes the order in which modules are first
    asked for, so the libraries-only variant can replay the handler's imports in the same order
    (``sys.modules`` holds them in completion order, leaves first)."""

    def __init__(self) -> None:
        self.names: dict[str, None] = {}

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.names.setdefault(name, None)


def main(argv: list[str]) -> int:
    mode, paths = argv[1], json.loads(argv[2])
    _set_path(paths)
    order = _RequestOrder()
    sys.meta_path.insert(0, order)  # type: ignore[arg-type]
    before = list(sys.modules)
    names = ["app"] if mode == "handler" else json.loads(argv[3])
    start, start_cpu = time.perf_counter(), time.process_time()
    for name in names:
        importlib.import_module(name)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    sys.meta_path.remove(order)  # type: ignore[arg-type]
    already = set(before)
    loaded = [n for n in order.names if n in sys.modules and n not in already]
    loaded += [n for n in sys.modules if n not in already and n not in order.names]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "modules": [[n, _origin(n, paths)] for n in loaded],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
