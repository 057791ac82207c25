"""Every mesh gRPC server refuses plain gRPC on a non-loopback address (issue #14 point 10):
the router and embedding worker (mesh.rpc.add_port), the chat worker and the filter."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from mesh import rpc
from mesh.config import ConfigError
from mesh.filter import service as filter_service
from worker.embedding_service import EmbeddingServed, EmbeddingWorkerServer
from worker.service import WorkerServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("LLMAAS_TLS", "LLMAAS_MESH_ALLOW_PLAIN", "LLMAAS_MESH_TOKEN"):
        monkeypatch.delenv(key, raising=False)


async def test_filter_refuses_a_public_plain_bind() -> None:
    with pytest.raises(ConfigError, match="LLMAAS_TLS=1"):
        await filter_service.start("0.0.0.0", 0, prompt_filter=SimpleNamespace())  # type: ignore[arg-type]


async def test_chat_worker_refuses_a_public_plain_bind() -> None:
    engine = SimpleNamespace(on_fatal=None)
    served = SimpleNamespace(model_id="m", worker_id="w")
    server = WorkerServer(engine, served)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="LLMAAS_TLS=1"):
        await server.start("0.0.0.0:0")  # refused before the engine starts


async def test_embedding_worker_refuses_a_public_plain_bind() -> None:
    served = EmbeddingServed("all-minilm:22m", 256, "emb", 8, "cpu")
    server = EmbeddingWorkerServer(SimpleNamespace(embed_ids=None), served)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="LLMAAS_TLS=1"):
        await server.start("0.0.0.0:0")


# -- the router process: refused before it opens any state -----------------------------


def _run_router(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LLMAAS_")}
    base.update({"LLMAAS_RUN_DIR": str(tmp_path / "run"), "PYTHONPATH": str(ROOT), **env})
    return subprocess.run(  # cwd: no llmaas.toml there
        [sys.executable, "-m", "mesh.router"],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _state_files(tmp_path: Path) -> list[Path]:
    run = tmp_path / "run"
    return sorted(p for p in run.rglob("*") if p.is_file()) if run.exists() else []


def test_router_on_a_public_host_without_tls_refuses_to_start(tmp_path: Path) -> None:
    done = _run_router(tmp_path, LLMAAS_ROUTER_HOST="0.0.0.0", LLMAAS_ROUTER_PORT="1")
    assert done.returncode != 0
    assert "router on 0.0.0.0" in done.stderr and "LLMAAS_TLS=1" in done.stderr
    assert "Traceback" not in done.stderr
    assert _state_files(tmp_path) == []  # no database opened


async def test_a_second_router_on_a_taken_port_fails_clearly(tmp_path: Path) -> None:
    first, _ = rpc.build_server([])
    port = rpc.add_port(first, "127.0.0.1", 0, "router")
    await first.start()
    try:
        done = await asyncio.to_thread(
            _run_router, tmp_path, LLMAAS_ROUTER_HOST="127.0.0.1", LLMAAS_ROUTER_PORT=str(port)
        )
    finally:
        await first.stop(None)
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in done.stderr and "already in use" in done.stderr
    assert "LLMAAS_ROUTER_PORT" in done.stderr and "Traceback" not in done.stderr
    assert _state_files(tmp_path) == []
