"""The layering of the domain: handlers → domain → data → AWS. Only the data-access package
(``orcapulse_tiktok/data``) and the PynamoDB models talk to AWS; nothing above them imports boto3,
botocore or PynamoDB, so every AWS call goes through one error policy (``data/faults.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "layers" / "common" / "orcapulse_tiktok"
AWS_PACKAGES = {"boto3", "botocore", "pynamodb"}
ALLOWED = (DOMAIN / "data", DOMAIN / "models")
MAX_MODULE_LINES = 350


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules() -> list[Path]:
    return sorted([*DOMAIN.rglob("*.py"), *(ROOT / "functions").rglob("*.py")])


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_data_package_and_the_models_import_aws_libraries(path: Path):
    if any(path.is_relative_to(allowed) for allowed in ALLOWED):
        return
    assert not _imported(path) & AWS_PACKAGES, f"{path.relative_to(ROOT)} talks to AWS outside data/"


def test_the_data_package_is_the_only_reader_of_aws_error_codes():
    # "Error" / "Code" lookups on a botocore response belong to data/faults.py alone.
    readers = [
        p.relative_to(ROOT)
        for p in _modules()
        if '.get("Error"' in p.read_text() or '["Error"]' in p.read_text()
    ]
    assert readers == [Path("layers/common/orcapulse_tiktok/data/faults.py")]


def test_no_domain_module_is_two_modules():
    long = {
        str(p.relative_to(DOMAIN)): n
        for p in DOMAIN.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
