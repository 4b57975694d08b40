"""Cold import of each handler from the built artifact, one fresh interpreter per sample.

Three variants, sampled in turn so drift on a shared machine hits them alike:

- handler: ``import app`` with ``sys.path`` = function code, layer, runtime packages;
- libraries: the same interpreter set-up importing exactly the third-party modules that the
  handler's import loaded (layer and runtime packages, in load order, without our own code), so
  handler / libraries is what our code adds on top of the libraries it needs;
- no bytecode: the handler again, over the same layer built without bytecode (sources only).

The headline figures are CPU time of the importing process (an import from the page cache is
CPU-bound; CPU time leaves out what other processes on a shared machine take); wall-clock medians
are kept beside them in the results.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.artifact import LAYER, Function, lambda_environment, runtime_dir

PROBE = Path(__file__).with_name("probe.py")
DOMAIN = "orcapulse_tiktok"
# Imports worth naming in the report: each is a cost a handler should only pay if its route needs it.
NOTABLE = ("requests", "pydantic", "pynamodb", "boto3", "botocore", "aws_xray_sdk", "urllib3")


@dataclass
class ColdImport:
    function: str
    handler_ms: float  # CPU time, median
    libraries_ms: float
    no_bytecode_ms: float
    own_modules: int
    third_party_modules: int
    notable: list[str]
    wall_ms: dict[str, float] = field(default_factory=dict)  # the same three, wall clock
    samples: dict[str, list[float]] = field(default_factory=dict)  # CPU ms per sample

    @property
    def own_overhead(self) -> float | None:
        """Fraction our code adds to the libraries' import time (0.10 = +10 %)."""
        return self.handler_ms / self.libraries_ms - 1 if self.libraries_ms > 0 else None

    @property
    def bytecode_speedup(self) -> float:
        return self.no_bytecode_ms / self.handler_ms if self.handler_ms > 0 else float("nan")


def _run(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-S", "-s", str(PROBE), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=env["LAMBDA_TASK_ROOT"],
    )
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def measure(function: Function, *, samples: int, source_layer: Path) -> ColdImport:
    runtime = runtime_dir()
    env = lambda_environment(function)
    shipped = json.dumps([str(function.built), str(LAYER), str(runtime)])
    unbuilt = json.dumps([str(function.built), str(source_layer), str(runtime)])

    first = _run(["handler", shipped], env)
    third_party = [name for name, origin in first["modules"] if origin in ("1", "2")]
    third_party = [n for n in third_party if n.split(".")[0] != DOMAIN]
    own = [n for n, origin in first["modules"] if n.split(".")[0] == DOMAIN or origin == "0"]
    libraries = ["modules", shipped, json.dumps(third_party)]
    _run(libraries, env)  # warm the page cache for the libraries-only variant too
    _run(["handler", unbuilt], env)

    variants = {
        "handler": ["handler", shipped],
        "libraries": libraries,
        "no_bytecode": ["handler", unbuilt],
    }
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    wall: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(samples):
        for name, args in variants.items():
            if name == "libraries" and not third_party:
                cpu[name].append(0.0)
                wall[name].append(0.0)
                continue
            sample = _run(args, env)
            cpu[name].append(sample["cpu_seconds"] * 1000)
            wall[name].append(sample["seconds"] * 1000)
    loaded_top = {n.split(".")[0] for n in third_party}
    return ColdImport(
        function=function.name,
        handler_ms=statistics.median(cpu["handler"]),
        libraries_ms=statistics.median(cpu["libraries"]),
        no_bytecode_ms=statistics.median(cpu["no_bytecode"]),
        own_modules=len(own),
        third_party_modules=len(third_party),
        notable=[n for n in NOTABLE if n in loaded_top],
        wall_ms={name: statistics.median(values) for name, values in wall.items()},
        samples=cpu,
    )


ORIGINS = {"0": "function", "1": "layer", "2": "runtime", "stdlib": "stdlib"}


def loaded_modules(function: Function, layer: Path = LAYER) -> dict[str, str]:
    """Every module the handler's cold import loads, with where it came from: ``function``,
    ``layer``, ``runtime`` (the runtime-provided packages) or ``stdlib``."""
    env = lambda_environment(function)
    paths = json.dumps([str(function.built), str(layer), str(runtime_dir())])
    return {name: ORIGINS[origin] for name, origin in _run(["handler", paths], env)["modules"]}
