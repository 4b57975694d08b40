"""Remove from the built layer what no function can import, and other dead weight.

Run by the layer's Makefile after ``pip install``, before bytecode is compiled. Stdlib only.

Keep-list, not deny-list: the modules of ``aws_lambda_powertools`` that survive are the static
import closure of the roots (every module of the domain package and every function's ``app.py``).
The closure follows *every* import statement, including those inside functions, ``try`` blocks
and ``TYPE_CHECKING`` guards, so a lazy import on a rarely used path keeps its target. A kept
module that imports by computed name (``importlib.import_module``, ``__import__``, Powertools'
``LazyLoader``) keeps its whole package subtree, since the names cannot be read statically.
Only Powertools is pruned by module: it is the large, modular dependency of which the functions
use a small part. Other packages lose only files that cannot run on Lambda (C sources, a mypy
plugin) and nothing else.
"""

from __future__ import annotations

import argparse
import ast
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

PRUNED_PACKAGE = "aws_lambda_powertools"
DYNAMIC_IMPORT_MARKERS = ("import_module", "__import__", "LazyLoader")
# Served only by ``enable_swagger()`` when no CDN url is given; kept if any root calls it.
SWAGGER_ASSETS = "aws_lambda_powertools/event_handler/openapi/swagger_ui"
SWAGGER_CALL = "enable_swagger"
# Files that no import can reach on Lambda: C sources of compiled extensions and pydantic's mypy
# plugin (a type-checker extension, imported only by mypy).
DEAD_FILES = ("pydantic/mypy.py",)
DEAD_SUFFIXES = (".c", ".h", ".pyx", ".pxd", ".pyi")
# dist-info files nothing reads at run time (RECORD serves pip uninstall; SBOMs and the README
# part of METADATA are documentation). METADATA headers, entry points and licences stay:
# importlib.metadata (pydantic's plugin loader, version lookups) reads them.
DIST_INFO_DROP = ("RECORD", "INSTALLER", "REQUESTED", "WHEEL", "direct_url.json", "sboms")


def module_path(site: Path, name: str) -> Path | None:
    """The file that defines module ``name`` in ``site`` (package ``__init__`` or module file)."""
    base = site.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def module_name(site: Path, path: Path) -> str:
    parts = list(path.relative_to(site).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _parents(name: str) -> Iterator[str]:
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        yield ".".join(parts[:i])


def imported_names(tree: ast.AST, current: str, is_package: bool) -> set[str]:
    """Every module name an import statement in ``tree`` may load (absolute, with candidates for
    ``from pkg import name`` where ``name`` may be a submodule)."""
    names: set[str] = set()
    package = current if is_package else current.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            if not base:
                continue
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _uses_dynamic_import(source: str) -> bool:
    return any(marker in source for marker in DYNAMIC_IMPORT_MARKERS)


def closure(site: Path, roots: Iterable[Path]) -> tuple[set[str], set[str]]:
    """Modules of ``site`` reachable from ``roots``, and packages kept whole (dynamic imports)."""
    seen: set[str] = set()
    whole: set[str] = set()
    queue: list[tuple[Path, str, bool]] = []
    for path in roots:
        name = module_name(site, path) if path.is_relative_to(site) else path.stem
        queue.append((path, name, path.name == "__init__.py"))
        seen.add(name)
    while queue:
        path, name, is_package = queue.pop()
        source = path.read_text(encoding="utf-8")
        if name.startswith(PRUNED_PACKAGE) and _uses_dynamic_import(source):
            whole.add(name if is_package else name.rpartition(".")[0])
        for imported in imported_names(ast.parse(source, str(path)), name, is_package):
            for candidate in _parents(imported):
                if candidate in seen:
                    continue
                target = module_path(site, candidate)
                if target is None:
                    continue
                seen.add(candidate)
                queue.append((target, candidate, target.name == "__init__.py"))
    return seen, whole


def _inside(name: str, packages: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def prune_modules(site: Path, keep: set[str], whole: set[str]) -> list[Path]:
    """Delete the unreachable modules of the pruned package; return what was deleted."""
    removed: list[Path] = []
    root = site / PRUNED_PACKAGE
    for path in sorted(root.rglob("*.py")):
        name = module_name(site, path)
        if name in keep or _inside(name, whole):
            continue
        path.unlink()
        removed.append(path)
    # A directory left with no module at all is dead (data files included), except the swagger
    # assets, handled on their own below.
    for directory in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if directory.exists() and not any(directory.rglob("*.py")) and not _is_swagger(site, directory):
            shutil.rmtree(directory)
            removed.append(directory)
    return removed


def _is_swagger(site: Path, path: Path) -> bool:
    return path.relative_to(site).as_posix().startswith(SWAGGER_ASSETS)


def prune_swagger_assets(site: Path, roots: Iterable[Path]) -> list[Path]:
    if any(SWAGGER_CALL in p.read_text(encoding="utf-8") for p in roots):
        return []
    assets = site / SWAGGER_ASSETS
    removed = [p for p in assets.glob("*") if p.suffix in (".js", ".css")] if assets.is_dir() else []
    for path in removed:
        path.unlink()
    return removed


def prune_dead_files(site: Path) -> list[Path]:
    removed = [site / f for f in DEAD_FILES if (site / f).is_file()]
    removed += [p for p in site.rglob("*") if p.is_file() and p.suffix in DEAD_SUFFIXES]
    for path in removed:
        path.unlink()
    return removed


def slim_dist_info(site: Path) -> list[Path]:
    removed: list[Path] = []
    for dist in site.glob("*.dist-info"):
        for name in DIST_INFO_DROP:
            target = dist / name
            if target.is_dir():
                shutil.rmtree(target)
                removed.append(target)
            elif target.is_file():
                target.unlink()
                removed.append(target)
        metadata = dist / "METADATA"
        if metadata.is_file():
            # Headers end at the first blank line; the rest is the project's README.
            text = metadata.read_text(encoding="utf-8")
            metadata.write_text(text.split("\n\n", 1)[0] + "\n", encoding="utf-8")
    return removed


def roots_of(site: Path, domain_package: str, functions: Path | None) -> list[Path]:
    roots = sorted((site / domain_package).rglob("*.py"))
    if functions is not None and functions.is_dir():
        roots += sorted(functions.glob("*/*.py"))
    return roots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("site", type=Path, help="the layer's python/ directory")
    parser.add_argument("--domain-package", default="orcapulse_tiktok")
    parser.add_argument("--functions", type=Path, help="directory holding <function>/app.py")
    args = parser.parse_args(argv)
    site: Path = args.site.resolve()
    roots = roots_of(site, args.domain_package, args.functions)
    if not any(not r.is_relative_to(site) for r in roots):
        print("prune_layer: no functions found; keeping what the domain package imports", file=sys.stderr)
    keep, whole = closure(site, roots)
    removed = prune_modules(site, keep, whole)
    removed += prune_swagger_assets(site, roots)
    removed += prune_dead_files(site)
    removed += slim_dist_info(site)
    kept = sum(1 for p in (site / PRUNED_PACKAGE).rglob("*.py"))
    print(f"prune_layer: kept {kept} {PRUNED_PACKAGE} modules, removed {len(removed)} paths")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
