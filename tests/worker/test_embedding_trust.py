"""The embedding worker's role check under mTLS and its bounded stop (issue #14 points 9, 10).

A fake model stands in for all-MiniLM (no weights needed): these tests are about the server.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import grpc
import pytest
import torch

from mesh import rpc
from mesh.pb import worker_pb2, worker_pb2_grpc
from tools.ops.certs import ensure_dev_pki
from worker import embedding_service
from worker.embedding_service import EmbeddingServed, EmbeddingWorkerServer

MODEL = "all-minilm:22m"


class FakeModel:
    """Tokenises to one id per word; `embed_ids` can be held until the test releases it."""

    max_tokens = 256

    def __init__(self) -> None:
        self.hold = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return [[1] * len(t.split()) for t in texts]

    def embed_ids(self, batch: list[list[int]]) -> tuple[torch.Tensor, int]:
        if self.hold:
            self.entered.set()
            self.release.wait(timeout=60)  # bounded: the test always releases it
        return torch.ones(len(batch), 4), sum(map(len, batch))


def _server(model: FakeModel) -> EmbeddingWorkerServer:
    served = EmbeddingServed(MODEL, model.max_tokens, "emb-test", 8, "cpu")
    return EmbeddingWorkerServer(model, served)  # type: ignore[arg-type]


def _embed_request() -> worker_pb2.EmbedRequest:
    return worker_pb2.EmbedRequest(model=MODEL, inputs=["hello world"])


async def _embed(stub: worker_pb2_grpc.WorkerStub) -> worker_pb2.EmbedResponse:
    return await stub.Embed(_embed_request(), timeout=60)


# -- mTLS: only the router may call Embed --------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_dev_pki(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def secure_port(pki: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LLMAAS_TLS", "1")
    monkeypatch.setenv("LLMAAS_TLS_DIR", str(pki))
    server = _server(FakeModel())
    port = await server.start("127.0.0.1:0")
    yield port
    await server.drain_and_stop(1.0)


def _dial_as(role: str, port: int, monkeypatch: pytest.MonkeyPatch) -> grpc.aio.Channel:
    monkeypatch.setenv("LLMAAS_TLS_ROLE", role)
    return rpc.open_channel(f"127.0.0.1:{port}", peer_role="worker")


async def test_router_certificate_may_embed(secure_port: int, monkeypatch) -> None:
    async with _dial_as("router", secure_port, monkeypatch) as channel:
        reply = await worker_pb2_grpc.WorkerStub(channel).Embed(_embed_request(), timeout=10)
    assert len(reply.embeddings) == 1 and reply.prompt_tokens == 2


@pytest.mark.parametrize("role", ["edge", "client", "admin", "worker"])
async def test_other_mesh_certificates_may_not_embed(secure_port: int, monkeypatch, role) -> None:
    async with _dial_as(role, secure_port, monkeypatch) as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.Embed(_embed_request(), timeout=10)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as err:
            _ = [r async for r in stub.WatchLoad(worker_pb2.LoadRequest(), timeout=10)]
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


# -- stop: idle load streams do not hold it; in-flight Embeds do, within a bound ----------


@pytest.fixture
def plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMAAS_TLS", raising=False)


async def test_stop_ends_watch_streams_at_once_and_waits_for_in_flight_embeds(plain) -> None:
    model = FakeModel()
    server = _server(model)
    port = await server.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = worker_pb2_grpc.WorkerStub(channel)
            watch = stub.WatchLoad(worker_pb2.LoadRequest(interval_ms=50))
            first = await watch.read()
            assert not first.draining
            model.hold = True
            embed = asyncio.create_task(_embed(stub))
            await asyncio.to_thread(model.entered.wait, 30)  # the Embed is computing now

            drain = asyncio.create_task(server.drain_and_stop(30.0))
            # The load stream ends by itself (status OK), its last report saying
            # "draining", while the Embed still runs: an idle stream never holds the stop.
            rest = []
            while (report := await watch.read()) != grpc.aio.EOF:
                rest.append(report)
            assert rest and rest[-1].draining
            assert await watch.code() == grpc.StatusCode.OK
            assert not drain.done() and not embed.done()  # still waiting for the Embed

            model.release.set()
            reply = await embed
            assert len(reply.embeddings) == 1
            await drain
    finally:
        model.release.set()


async def test_stop_waits_for_an_embed_at_most_the_bound(plain, monkeypatch) -> None:
    monkeypatch.setattr(embedding_service, "EMBED_DRAIN_MAX_S", 0.1)
    model = FakeModel()
    model.hold = True
    server = _server(model)
    port = await server.start("127.0.0.1:0")
    stops: list[float | None] = []
    real_stop = server.server.stop

    async def spy_stop(grace: float | None):
        stops.append(grace)
        return await real_stop(grace)

    monkeypatch.setattr(server.server, "stop", spy_stop)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            embed = asyncio.create_task(_embed(worker_pb2_grpc.WorkerStub(channel)))
            await asyncio.to_thread(model.entered.wait, 30)
            await server.drain_and_stop(30.0)  # the worker's drain timeout is 30 s
            assert stops == [0.1]  # not the 30 s drain timeout
            with pytest.raises(grpc.aio.AioRpcError):
                await embed  # cancelled by the stop
    finally:
        model.release.set()  # lets the computing thread end


async def test_draining_worker_refuses_new_embeds(plain) -> None:
    server = _server(FakeModel())
    port = await server.start("127.0.0.1:0")
    server.servicer.draining = True
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await worker_pb2_grpc.WorkerStub(channel).Embed(_embed_request(), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    await server.drain_and_stop(1.0)
