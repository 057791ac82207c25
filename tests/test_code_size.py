"""Issue #19's size bounds, over the whole product: no hand-written Python file outside
`tests/` over 400 lines, no class in `mesh/` with over 15 methods (private ones included).
Generated code (`mesh/pb`) is exempt."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400
MAX_METHODS = 15


def _sources(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (ROOT / pkg).rglob("*.py") if "pb" not in p.parts)


def _methods(node: ast.ClassDef) -> int:
    return sum(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in node.body)


def test_no_hand_written_file_over_400_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _sources("mesh", "worker", "tools")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_no_class_in_mesh_over_15_methods() -> None:
    big = {
        f"{path.relative_to(ROOT)}:{node.name}": count
        for path in _sources("mesh")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef) and (count := _methods(node)) > MAX_METHODS
    }
    assert not big, f"classes over {MAX_METHODS} methods: {big}"
