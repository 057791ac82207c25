"""The edge is split by job, each module small; `mesh.edge.app.create_app` stays the entry (#19)."""

from __future__ import annotations

from pathlib import Path

import mesh.edge
from mesh.edge import app, error_handlers, generation, info, router_calls

EDGE_DIR = Path(mesh.edge.__file__).parent


def test_no_edge_module_over_400_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in EDGE_DIR.glob("*.py")}
    assert all(n <= 400 for n in sizes.values()), sizes


def test_app_only_assembles_the_jobs():
    assert callable(app.create_app)
    # Each job lives in its own module; the app module wires them.
    assert app.chat_completions is generation.chat_completions
    assert app.health is info.health
    assert app.on_mesh_error is error_handlers.on_mesh_error
    assert app.RouterClient is router_calls.RouterClient
