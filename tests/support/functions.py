"""Import a function's handler module the way Lambda does (``functions/<name>/app.py`` as a module
of its own), under a caller-chosen name so that several functions' ``app`` modules can live in one
process."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def import_function(name: str, module_name: str) -> ModuleType:
    """Execute ``functions/<name>/app.py`` as ``module_name`` (registered in ``sys.modules``; the
    caller removes it when done)."""
    spec = importlib.util.spec_from_file_location(module_name, FUNCTIONS / name / "app.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
