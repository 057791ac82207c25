"""The router's durable-state code stays split in small units (issue #19): each class at
most 15 methods (private ones included), each module at most 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROUTER = Path(__file__).resolve().parents[3] / "mesh" / "router"
MODULES = [
    "store.py",
    "store_schema.py",
    "store_writer.py",
    "store_queries.py",
    "store_retention.py",
    "audit_chain.py",
    "audit_anchor.py",
    "accounts.py",
    "recording.py",
    "refusals.py",
    "key_lifecycle.py",
    "bootstrap.py",
    "admin_service.py",
    "admin_wire.py",
    "admin_auth.py",
    "admin_checks.py",
    "directory.py",
    "directory_index.py",
]


@pytest.mark.parametrize("name", MODULES)
def test_each_unit_is_small(name: str) -> None:
    source = (ROUTER / name).read_text()
    assert len(source.splitlines()) <= 400
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            methods = [
                n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            ]
            assert len(methods) <= 15, f"{node.name} has {len(methods)} methods"
