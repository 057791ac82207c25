"""WorkerServer's own gRPC server: no port sharing, the mesh's message limit (issue #14
points 3 and 9, the worker's side), a big prompt refused by size over gRPC (point 1)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from mesh.config import grpc_message_limit
from mesh.errors import MD_ERROR_CODE as ERROR_CODE_KEY
from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from mesh.rpc import server_options
from tests.worker.fakes import FakeRunner, SpyTokenizer
from worker.async_engine import AsyncLLMEngine
from worker.engine import LLMEngine
from worker.service import ServedModel, WorkerServer


def _server() -> tuple[WorkerServer, SpyTokenizer]:
    tok = SpyTokenizer()

    def build() -> LLMEngine:
        return LLMEngine(FakeRunner(max_model_len=1000), tok, SpyTokenizer.eos_token_ids)  # type: ignore[arg-type]

    served = ServedModel("fake", 1000, "w-test", 4, "cpu", "float32")
    return WorkerServer(AsyncLLMEngine(build), served), tok


@pytest.fixture
async def server() -> AsyncIterator[tuple[WorkerServer, SpyTokenizer]]:
    worker, tok = _server()
    await worker.start("127.0.0.1:0")
    yield worker, tok
    await worker.drain_and_stop(timeout_s=0)


async def test_a_second_worker_on_the_same_port_fails_to_bind(server) -> None:
    first, _ = server
    second, _ = _server()
    with pytest.raises(OSError, match=f"127.0.0.1:{first.port}"):
        await second.start(f"127.0.0.1:{first.port}")
    await second.drain_and_stop(timeout_s=0)


def test_the_server_options_carry_the_mesh_limit() -> None:
    options = dict(server_options())
    assert options["grpc.max_receive_message_length"] == grpc_message_limit()
    assert options["grpc.max_send_message_length"] == grpc_message_limit()
    assert options["grpc.so_reuseport"] == 0


async def test_a_5_mib_prompt_gets_through_and_is_refused_by_size_untokenised(server) -> None:
    # gRPC's default 4 MiB receive limit would refuse it as RESOURCE_EXHAUSTED
    worker, tok = server
    assert grpc_message_limit() > 5 * 2**20
    content = "x" * (5 * 2**20)
    requests = [
        worker_pb2.GenerateRequest(prompt=content),
        worker_pb2.GenerateRequest(
            chat=worker_pb2.ChatPrompt(
                messages=[common_pb2.ChatMessage(role="user", content=content)]
            ),
            sampling=common_pb2.SamplingParams(max_tokens=1),
        ),
    ]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{worker.port}") as channel:
        stub = worker_pb2_grpc.WorkerStub(channel)
        for request in requests:
            for call in (stub.CountTokens, _generate(stub)):
                with pytest.raises(grpc.aio.AioRpcError) as info:
                    await call(request)
                assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert dict(info.value.trailing_metadata())[ERROR_CODE_KEY] == (
                    "context_length_exceeded"
                )
                assert "at least" in info.value.details()
    assert tok.calls == []


def _generate(stub: worker_pb2_grpc.WorkerStub):
    async def call(request: worker_pb2.GenerateRequest) -> None:
        async for _ in stub.Generate(request):
            pass

    return call
