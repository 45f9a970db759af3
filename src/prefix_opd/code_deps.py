"""The package code a workflow script runs: the import closure of its `prefix_opd` imports.

Snakemake's code trigger sees a rule's script, not what the script imports, so every rule lists the package
files it runs as inputs, and a change to any of them reruns the rule. This module derives that list from the
import graph (parsed, not executed), so it follows the code exactly: imports anywhere in a module count,
function-local ones included, and non-Python files a module reads are listed in :data:`RESOURCES`.
"""

from __future__ import annotations

import ast
import functools
import os
from pathlib import Path

PACKAGE = "prefix_opd"
ROOT = Path(__file__).resolve().parent  # src/prefix_opd
RESOURCES = {"fused_decode": ("fused_decode.c",)}
"""module -> files it reads at run time (relative to the package)."""


def module_file(module: str) -> Path | None:
    """`prefix_opd.toy.task` -> src/prefix_opd/toy/task.py (or the package's __init__.py); None if absent."""
    parts = module.split(".")[1:]
    base = ROOT.joinpath(*parts)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join((PACKAGE, *parts))


def imported_modules(source: str, module: str | None = None) -> set[str]:
    """`prefix_opd.*` modules that `source` imports (relative imports resolved against `module`)."""
    out: set[str] = set()
    package = module.rsplit(".", 1)[0] if module else PACKAGE
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            out.add(target)
            out |= {f"{target}.{a.name}" for a in node.names if module_file(f"{target}.{a.name}")}
    return {m for m in out if module_file(m)}


@functools.cache
def closure(modules: frozenset[str]) -> frozenset[str]:
    """The modules and everything they import, transitively (package `__init__`s included)."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        path = module_file(m)
        if path is None:
            continue
        parent = m.rsplit(".", 1)[0]
        if parent != m and parent.startswith(PACKAGE) and parent not in seen:
            todo.append(parent)
        todo += imported_modules(path.read_text(), m if path.name != "__init__.py" else f"{m}.__init__")
    return frozenset(seen)


def script_code(script: str | Path, base: str | Path = ".") -> list[str]:
    """Package files that a workflow script runs, sorted, as paths relative to `base` (the working directory:
    `../../src/...` when a world's results live in a folder of their own)."""
    script = Path(script)
    modules = imported_modules(script.read_text())
    files: set[Path] = set()
    for m in closure(frozenset(modules)):
        path = module_file(m)
        if path is None:
            continue
        files.add(path)
        files |= {path.parent / r for r in RESOURCES.get(m.rsplit(".", 1)[-1], ())}
    return sorted(os.path.relpath(f, Path(base).resolve()) for f in files)
