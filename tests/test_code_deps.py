"""Every rule's code inputs are exactly the import closure of the script it runs."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from prefix_opd import code_deps

ROOT = Path(__file__).resolve().parents[1]
RULES = sorted((ROOT / "workflow" / "rules").glob("*.smk"))


def _blocks() -> list[tuple[str, str]]:
    """(rule text, script name) for every rule or checkpoint that runs a script."""
    out = []
    for path in RULES:
        text = path.read_text()
        starts = [m.start() for m in re.finditer(r"(?m)^\s*(?:rule|checkpoint)\b[^\n]*:", text)] + [len(text)]
        for a, b in zip(starts, starts[1:], strict=False):
            block = text[a:b]
            m = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+)\.py"', block)
            if m:
                out.append((block, m.group(1)))
    return out


def test_every_rule_that_runs_a_script_declares_that_scripts_code():
    blocks = _blocks()
    assert len(blocks) >= 20
    for block, script in blocks:
        assert f'code=script_code("{script}")' in block, block


def test_closure_follows_relative_absolute_and_function_local_imports():
    files = {Path(f).name for f in code_deps.script_code(ROOT / "workflow" / "scripts" / "train.py", ROOT)}
    # train.py imports losses and sampling directly; sampling imports fused_decode, which reads fused_decode.c
    assert {"train.py", "losses.py", "sampling.py", "fused_decode.py", "fused_decode.c", "models.py"} <= files
    assert "tables.py" not in files and "findings.py" not in files
    validate = code_deps.closure(frozenset({"prefix_opd.validate"}))
    assert "prefix_opd.toy.tokenizer" in validate  # imported inside check_toy only


def test_closure_equals_a_direct_walk_of_the_import_statements():
    """An independent walk (every `prefix_opd` module named in any import, to a fixed point) finds the same set."""
    for script in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        found: set[str] = set()
        todo = [script]
        while todo:
            tree = ast.parse(todo.pop().read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prefix_opd"):
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level:  # relative: resolved by code_deps itself
                    continue
                for name in names:
                    path = code_deps.module_file(name)
                    if path and path not in found:
                        found.add(path)
                        todo.append(path)
        listed = {ROOT / f for f in code_deps.script_code(script, ROOT)}
        assert found <= listed, (script.name, sorted(found - listed))
