"""Fixtures for the router tests; the fakes live in router_fakes.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from router_fakes import FakeWorker, Mesh, start_router


@pytest.fixture
async def make_mesh(tmp_path: Path) -> AsyncIterator:
    meshes: list[Mesh] = []

    async def make(workers: list[FakeWorker] | None = None, **kw) -> Mesh:
        mesh = await start_router(
            tmp_path, workers or [FakeWorker("w1", ("chat:1m", "soon:1m", "emb:1m"))], **kw
        )
        meshes.append(mesh)
        return mesh

    yield make
    for mesh in meshes:
        await mesh.pool.close()
        for server in [*mesh.servers, mesh.filter_server]:
            await server.stop(0)
