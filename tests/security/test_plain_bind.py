"""Every mesh gRPC server refuses plain gRPC on a non-loopback address (issue #14 point 10):
the router and embedding worker (mesh.rpc.add_port), the chat worker and the filter."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mesh.config import ConfigError
from mesh.filter import service as filter_service
from worker.embedding_service import EmbeddingServed, EmbeddingWorkerServer
from worker.service import WorkerServer


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
