"""The built application as Lambda sees it: the functions' and the layer's directories under
``.aws-sam/build``, a stand-in for the packages the python3.12 runtime provides, and the facts the
issue asks about the layer (size, no AWS SDK inside)."""

from __future__ import annotations

import compileall
import fcntl
import importlib.metadata
import importlib.util
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orcapulse_local.template import load_template, resources_of_type

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".aws-sam" / "build"
LAYER_ID = "CommonLayer"
LAYER = BUILD / LAYER_ID / "python"
WORK = ROOT / ".aws-sam" / "bench"
RUNTIME = WORK / "runtime"
SOURCE_LAYER = WORK / "layer-source" / "python"
LAYER_MAKEFILE = ROOT / "layers" / "common" / "Makefile"

# What the python3.12 Lambda runtime puts on sys.path after the layers: the AWS SDK and its
# dependencies (top-level import names). The layer must not ship any of the first three.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
FORBIDDEN_IN_LAYER = ("boto3", "botocore", "s3transfer")


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str  # directory under functions/

    @property
    def built(self) -> Path:
        return BUILD / self.logical_id


def functions() -> list[Function]:
    """Every function of the template whose code lives under ``functions/``."""
    out = []
    for logical_id, spec in resources_of_type(load_template(), "AWS::Serverless::Function").items():
        code_uri = str(spec["Properties"].get("CodeUri", "")).rstrip("/")
        if code_uri.startswith("functions/"):
            out.append(Function(logical_id, code_uri.removeprefix("functions/")))
    return sorted(out, key=lambda f: f.name)


def require_build() -> None:
    if not (LAYER.is_dir() and (BUILD / "template.yaml").is_file()):
        raise SystemExit("no build found: run `make build` first")


def _versions() -> dict[str, str]:
    return {d: importlib.metadata.version(d) for d in RUNTIME_DISTRIBUTIONS}


def runtime_dir() -> Path:
    """A directory holding exactly the runtime-provided packages, compiled as the runtime ships
    them. Copied from this environment (same versions as the tests use) and reused between runs.

    Safe to call from several threads and processes at once (the test suite probes functions in
    parallel): one caller builds under an exclusive lock into a scratch directory and renames it
    into place; the others wait for the lock and find it built."""
    stamp = RUNTIME / ".versions.json"
    wanted = _versions()
    with _runtime_lock():
        if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
            return RUNTIME
        scratch = Path(tempfile.mkdtemp(prefix="runtime-", dir=WORK))
        try:
            for name in RUNTIME_PACKAGES:
                spec = importlib.util.find_spec(name)
                if spec is None or spec.origin is None:
                    raise SystemExit(f"{name} is not installed in this environment")
                origin = Path(spec.origin)
                if spec.submodule_search_locations:
                    shutil.copytree(
                        origin.parent, scratch / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                    )
                else:
                    shutil.copy2(origin, scratch / origin.name)
            compileall.compile_dir(
                scratch, quiet=1, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
            )
            (scratch / stamp.name).write_text(json.dumps(wanted))
            shutil.rmtree(RUNTIME, ignore_errors=True)
            scratch.rename(RUNTIME)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return RUNTIME


_THREAD_LOCK = threading.Lock()


@contextmanager
def _runtime_lock() -> Iterator[None]:
    """Exclusive across threads (a lock) and processes (``flock`` on a file beside the copy)."""
    WORK.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCK, open(WORK / ".runtime.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_source_layer() -> Path:
    """The same layer, built by the same Makefile, without bytecode: sources only."""
    out = SOURCE_LAYER.parent
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    build = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-f",
            str(LAYER_MAKEFILE),
            "build-CommonLayer",
            f"ARTIFACTS_DIR={out}",
            "BYTECODE=none",
            f"PYTHON={sys.executable}",
        ],
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        raise SystemExit(f"building the layer without bytecode failed:\n{build.stdout}{build.stderr}")
    return SOURCE_LAYER


@dataclass(frozen=True)
class LayerFacts:
    bytes: int
    files: int
    pyc_files: int
    py_files: int
    forbidden: tuple[str, ...]


def layer_facts(layer: Path = LAYER) -> LayerFacts:
    """Unzipped size (sum of file sizes, what Lambda counts) and any AWS SDK package inside."""
    files = [p for p in layer.rglob("*") if p.is_file()]
    forbidden = sorted(
        {
            p.relative_to(layer).parts[0]
            for p in layer.rglob("*")
            if p.relative_to(layer).parts[0].split("-")[0].lower() in FORBIDDEN_IN_LAYER
        }
    )
    return LayerFacts(
        bytes=sum(p.stat().st_size for p in files),
        files=len(files),
        pyc_files=sum(1 for p in files if p.suffix == ".pyc"),
        py_files=sum(1 for p in files if p.suffix == ".py"),
        forbidden=tuple(forbidden),
    )


def lambda_environment(function: Function, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a cold container of ``function`` starts with: its template variables plus
    what Lambda itself sets (tracing is active, as the template asks)."""
    from tests.support.deployment import function_env

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(function.built),
        "LAMBDA_RUNTIME_DIR": str(RUNTIME),
        "AWS_LAMBDA_FUNCTION_NAME": f"orcapulse-tiktok-{function.name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "_HANDLER": "app.lambda_handler",
        **function_env(function.logical_id),
        **(extra or {}),
    }
    return env
