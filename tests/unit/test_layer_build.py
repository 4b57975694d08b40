"""The shared layer as `sam build` ships it: no AWS SDK inside, under the size budget, bytecode for
python3.12 that a read-only disk never makes stale, and nothing dead. The pruning tool keeps every
module an import statement can reach, lazy ones included.

The artifact checks read ``.aws-sam/build`` (``make test`` builds it before running pytest)."""

from __future__ import annotations

import importlib.util
import marshal
import sys
from pathlib import Path
from types import CodeType, ModuleType

import pytest

from bench.artifact import FORBIDDEN_IN_LAYER, LAYER, layer_facts

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "orcapulse_tiktok"
DOMAIN_SOURCE = ROOT / "layers" / "common" / DOMAIN
MAX_LAYER_BYTES = 15 * 1024 * 1024
# PEP 552 flags word: bit 0 = hash-based, bit 1 = check_source.
UNCHECKED_HASH_FLAGS = 0b01

needs_build = pytest.mark.skipif(
    not LAYER.is_dir(), reason="no layer build in .aws-sam/build: run `make build` (make test does)"
)


def _load_prune_tool() -> ModuleType:
    path = ROOT / "layers" / "common" / "tools" / "prune_layer.py"
    spec = importlib.util.spec_from_file_location("prune_layer", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


prune_layer = _load_prune_tool()


def _third_party_files(suffix: str) -> list[Path]:
    return [p for p in LAYER.rglob(f"*{suffix}") if p.relative_to(LAYER).parts[0] != DOMAIN and p.is_file()]


def _code(pyc: Path) -> CodeType:
    code = marshal.loads(pyc.read_bytes()[16:])  # noqa: S302 - our own build output
    assert isinstance(code, CodeType)
    return code


# -- the built artifact ------------------------------------------------------------------------------
@needs_build
def test_layer_ships_no_aws_sdk_and_fits_the_budget():
    facts = layer_facts()
    assert facts.forbidden == ()
    for name in FORBIDDEN_IN_LAYER:
        assert not (LAYER / name).exists()
        assert not list(LAYER.glob(f"{name}-*.dist-info"))
    assert facts.bytes <= MAX_LAYER_BYTES, f"layer is {facts.bytes / 2**20:.2f} MiB"


@needs_build
def test_third_party_code_is_sourceless_bytecode_for_this_python_with_lambda_paths():
    assert not _third_party_files(".py"), "third-party sources should have been compiled and removed"
    pycs = _third_party_files(".pyc")
    assert len(pycs) > 100
    for pyc in pycs:
        assert "__pycache__" not in pyc.parts, pyc  # sourceless .pyc sit where the module was
        assert pyc.read_bytes()[:4] == importlib.util.MAGIC_NUMBER, pyc
        # Tracebacks name the file where Lambda mounts the layer, not the build machine's path.
        relative = pyc.relative_to(LAYER).with_suffix(".py").as_posix()
        assert _code(pyc).co_filename == f"/opt/python/{relative}", pyc


@needs_build
def test_domain_package_ships_source_and_unchecked_hash_bytecode_of_that_source():
    shipped = sorted(p.relative_to(LAYER / DOMAIN) for p in (LAYER / DOMAIN).rglob("*.py"))
    source = sorted(p.relative_to(DOMAIN_SOURCE) for p in DOMAIN_SOURCE.rglob("*.py"))
    assert shipped == source, "stale layer build: run `make build`"
    tag = sys.implementation.cache_tag
    for relative in shipped:
        py = LAYER / DOMAIN / relative
        pyc = py.parent / "__pycache__" / f"{py.stem}.{tag}.pyc"
        data = pyc.read_bytes()
        assert data[:4] == importlib.util.MAGIC_NUMBER, pyc
        assert int.from_bytes(data[4:8], "little") == UNCHECKED_HASH_FLAGS, pyc
        assert data[8:16] == importlib.util.source_hash(py.read_bytes()), f"{pyc} is not of {py}"


@needs_build
def test_no_dead_weight_in_the_layer():
    top = {p.name for p in LAYER.iterdir()}
    assert "bin" not in top
    assert not [p for p in LAYER.rglob("*") if p.is_dir() and p.name in ("tests", "test")]
    assert not [p for p in LAYER.rglob("*") if p.suffix in prune_layer.DEAD_SUFFIXES]
    assert not list(LAYER.glob("*.dist-info/RECORD"))
    assert not (LAYER / "pydantic" / "mypy.pyc").exists()
    # Powertools utilities no function can import are gone; the ones the functions use stay.
    utilities = LAYER / "aws_lambda_powertools" / "utilities"
    assert not (utilities / "idempotency").exists()
    assert (utilities / "parameters").is_dir()
    assert not list((LAYER / prune_layer.SWAGGER_ASSETS).glob("*.js"))


@needs_build
def test_dist_info_metadata_still_answers_version_lookups():
    from importlib.metadata import PathDistribution

    dists = list(LAYER.glob("*.dist-info"))
    assert dists
    for dist in dists:
        assert PathDistribution(dist).version == dist.name.removesuffix(".dist-info").split("-")[1]


# -- the pruning tool ----------------------------------------------------------------------------------
def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    pt = "aws_lambda_powertools"
    _write(
        tmp_path / "python",
        {
            f"{pt}/__init__.py": "",
            f"{pt}/py.typed": "",
            f"{pt}/logging/__init__.py": "from .logger import Logger\n",
            f"{pt}/logging/logger.py": "def f():\n    from aws_lambda_powertools.shared import lazy\n",
            f"{pt}/shared/__init__.py": "",
            f"{pt}/shared/lazy.py": "",
            f"{pt}/shared/unused.py": "",
            f"{pt}/parser/__init__.py": "import importlib\nm = importlib.import_module(__name__ + '.models')\n",
            f"{pt}/parser/models.py": "",
            f"{pt}/idempotency/__init__.py": "",
            f"{pt}/idempotency/schema.json": "{}",
            f"{pt}/event_handler/__init__.py": "",
            f"{pt}/event_handler/openapi/__init__.py": "",
            f"{pt}/event_handler/openapi/swagger_ui/__init__.py": "",
            f"{pt}/event_handler/openapi/swagger_ui/bundle.js": "x",
            "orcapulse_tiktok/__init__.py": "",
            "orcapulse_tiktok/obs.py": "from aws_lambda_powertools.logging import Logger\n",
            "other/__init__.py": "",
            "other/_speedups.c": "int x;",
            "other-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: other\nVersion: 1.0\n\n# README\n",
            "other-1.0.dist-info/RECORD": "other/__init__.py,,\n",
        },
    )
    _write(tmp_path / "functions", {"webhook/app.py": "from aws_lambda_powertools.parser import m\n"})
    return tmp_path


def test_prune_keeps_the_import_closure_and_removes_the_rest(site: Path, capsys):
    python = site / "python"
    assert prune_layer.main([str(python), "--functions", str(site / "functions")]) == 0
    pt = python / "aws_lambda_powertools"
    # Reached statically, including an import inside a function body.
    assert (pt / "logging" / "logger.py").is_file()
    assert (pt / "shared" / "lazy.py").is_file()
    # A package that imports by computed name keeps its whole subtree.
    assert (pt / "parser" / "models.py").is_file()
    # Unreachable: a module, and a package with its data files.
    assert not (pt / "shared" / "unused.py").exists()
    assert not (pt / "idempotency").exists()
    # Swagger assets go unless a function calls enable_swagger.
    assert not (pt / "event_handler" / "openapi" / "swagger_ui" / "bundle.js").exists()
    # Other packages keep every module; only build leftovers go.
    assert (python / "other" / "__init__.py").is_file()
    assert not (python / "other" / "_speedups.c").exists()
    assert not (python / "other-1.0.dist-info" / "RECORD").exists()
    assert (python / "other-1.0.dist-info" / "METADATA").read_text() == (
        "Metadata-Version: 2.1\nName: other\nVersion: 1.0\n"
    )
    assert "removed" in capsys.readouterr().out


def test_prune_keeps_swagger_assets_when_a_function_serves_swagger(site: Path):
    _write(
        site / "functions",
        {
            "docs/app.py": "from aws_lambda_powertools.event_handler.openapi import swagger_ui\n"
            "app.enable_swagger(path='/swagger')\n"
        },
    )
    prune_layer.main([str(site / "python"), "--functions", str(site / "functions")])
    assert (
        site / "python" / "aws_lambda_powertools" / "event_handler" / "openapi" / "swagger_ui" / "bundle.js"
    ).is_file()


def test_relative_imports_resolve_against_the_importing_package():
    import ast

    tree = ast.parse("from . import a\nfrom ..b import c\nfrom .d import *\n")
    names = prune_layer.imported_names(tree, "pkg.sub.mod", is_package=False)
    assert {"pkg.sub", "pkg.sub.a", "pkg.b", "pkg.b.c", "pkg.sub.d"} <= names
