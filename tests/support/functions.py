"""Import a function's handler module the way Lambda does (``functions/<name>/app.py`` as a module
of its own), under a module name of its own, so that several functions' ``app`` modules can live in
one process — the one loader of the unit tests, the fault harness and the bench."""

from __future__ import annotations

import importlib.util
import sys
import uuid
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


class Functions:
    """Loads ``functions/<name>/app.py`` by name: once, as a warm container keeps it, or — with
    ``reuse=False`` — afresh on every call, as a new container would. Each loader's modules have
    names of their own (``<prefix>_<name>_app_<tag>``); ``close`` unloads them."""

    def __init__(self, prefix: str = "function", *, reuse: bool = True) -> None:
        self.prefix = f"{prefix}_{uuid.uuid4().hex[:8]}"
        self.reuse = reuse
        self.loaded: dict[str, ModuleType] = {}

    def __call__(self, name: str) -> ModuleType:
        if not self.reuse or name not in self.loaded:
            self.loaded[name] = import_function(name, f"{self.prefix}_{name}_app")
        return self.loaded[name]

    def close(self) -> None:
        for module in self.loaded.values():
            sys.modules.pop(module.__name__, None)
        self.loaded.clear()
