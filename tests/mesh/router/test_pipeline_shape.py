"""The request path stays small units (issue #19): each class at most 15 methods (private
ones included), each module at most 400 lines; the servicer is a thin adapter that reaches
the access control only through its protocol (no getattr for tier/budget)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROUTER = Path(__file__).resolve().parents[3] / "mesh" / "router"
MODULES = [
    "service.py",
    "console_service.py",
    "generation.py",
    "accounting.py",
    "ratelimit.py",
    *(f"pipeline/{p.name}" for p in sorted((ROUTER / "pipeline").glob("*.py"))),
]


def _methods(node: ast.ClassDef) -> list[ast.AST]:
    return [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


@pytest.mark.parametrize("name", MODULES)
def test_each_unit_is_small(name: str):
    source = (ROUTER / name).read_text()
    assert len(source.splitlines()) <= 400
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            assert len(_methods(node)) <= 15, f"{node.name} has {len(_methods(node))} methods"


@pytest.mark.parametrize("name", MODULES)
def test_tier_and_budget_come_through_the_protocol(name: str):
    source = (ROUTER / name).read_text()
    assert "getattr(self._access" not in source and '"tier"' not in source, name


def test_each_rpc_of_the_servicer_is_a_few_lines():
    tree = ast.parse((ROUTER / "service.py").read_text())
    (servicer,) = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    for method in _methods(servicer):
        if method.name[0].isupper():  # an RPC
            lines = method.end_lineno - method.lineno + 1
            assert lines <= 16, f"{method.name}: {lines} lines"
