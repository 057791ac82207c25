"""One server bootstrap and one error path (mesh.rpc) for every mesh component (#19).

The chat worker, the filter and the embedding worker are served by `build_server`: their
errors reach callers through the same table (status + llmaas-error-* metadata that
`from_rpc_error` turns back into the same kind), an unexpected error is a logged INTERNAL
that names nothing of it, and `stop_bounded` / `serve_until_signal` stop any of them
within a bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from types import SimpleNamespace

import grpc
import pytest

from mesh import errors, rpc
from mesh.errors import MD_ERROR_CODE, MD_HTTP_STATUS, InvalidRequest, from_rpc_error
from mesh.filter import offload
from mesh.filter import service as filter_service
from mesh.pb import filter_pb2, filter_pb2_grpc, worker_pb2, worker_pb2_grpc
from worker.errors import Draining, EngineFailed, ModelNotFound
from worker.service import ServedModel, WorkerServer

SERVED = ServedModel(
    model_id="m", context_length=8, worker_id="w", max_num_seqs=1, device="cpu", dtype="bf16"
)


class _Engine:
    """An AsyncLLMEngine stand-in whose calls raise `exc`."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.on_fatal = None
        self.is_draining = False
        self.num_active = 0
        self.engine = SimpleNamespace(context_length=8)

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def wait_idle(self, timeout_s: float) -> bool:
        return True

    async def count_prompt_tokens(self, prompt):
        raise self.exc

    async def generate(self, *args) -> AsyncIterator[object]:
        raise self.exc
        yield  # an async generator, like the engine's


async def _worker_error(exc: BaseException, call: str) -> grpc.aio.AioRpcError:
    worker = WorkerServer(_Engine(exc), SERVED)  # type: ignore[arg-type]
    port = await worker.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = worker_pb2_grpc.WorkerStub(channel)
            request = worker_pb2.GenerateRequest(prompt="hi")
            with pytest.raises(grpc.aio.AioRpcError) as info:
                if call == "CountTokens":
                    await stub.CountTokens(request)
                else:
                    async for _ in stub.Generate(request):
                        pass
            return info.value
    finally:
        await worker.drain_and_stop(timeout_s=0)


@pytest.mark.parametrize("call", ["CountTokens", "Generate"])
@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (Draining(), errors.UNAVAILABLE),
        (EngineFailed("step"), errors.UNAVAILABLE),
        (ModelNotFound("x", "m"), errors.NOT_FOUND),
    ],
)
async def test_worker_errors_go_through_the_mesh_table(exc, kind, call) -> None:
    err = await _worker_error(exc, call)
    assert err.code() == kind.grpc_code
    assert err.details() == str(exc)
    metadata = dict(err.trailing_metadata())
    assert metadata[MD_ERROR_CODE] == kind.default_code
    assert metadata[MD_HTTP_STATUS] == str(kind.http_status)
    assert from_rpc_error(err).kind == kind  # the router rebuilds the same error


@pytest.mark.parametrize("call", ["CountTokens", "Generate"])
async def test_an_unexpected_worker_error_is_internal_and_shows_nothing_of_it(call) -> None:
    err = await _worker_error(RuntimeError("secret detail"), call)
    assert err.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in err.details()
    assert "/llmaas.v1.Worker/" in err.details()


async def test_the_filter_refusal_carries_the_mesh_error_metadata(monkeypatch) -> None:
    monkeypatch.setenv("LLMAAS_MAX_BODY_BYTES", "2048")
    server, port = await filter_service.start("127.0.0.1", 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = filter_pb2_grpc.SecurityFilterStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Check(filter_pb2.CheckRequest(tenant="t", prompt="a" * 2049))
        metadata = dict(info.value.trailing_metadata())
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert metadata[MD_ERROR_CODE] == "invalid_request_error"
        assert metadata[MD_HTTP_STATUS] == "400"
    finally:
        await server.stop(None)
        offload.close_all()


async def test_a_stream_stream_handler_is_mapped_too() -> None:
    """One wrap helper for all four call kinds: the error path covers streaming requests."""

    async def chat(requests, context):
        async for _ in requests:
            raise InvalidRequest("bad message", param="messages")
        yield b""

    server, _health = rpc.build_server(["test.Chat"])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Chat", {"Talk": grpc.stream_stream_rpc_method_handler(chat)}
            ),
        )
    )
    port = rpc.add_port(server, "127.0.0.1", 0, "test")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.stream_stream("/test.Chat/Talk")(iter([b"x"]))
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in call:
                    pass
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(info.value.trailing_metadata())["llmaas-error-param"] == "messages"
    finally:
        await server.stop(None)


async def test_a_plain_networked_worker_role_needs_the_mesh_token(monkeypatch) -> None:
    """build_server(role=...) installs the component's caller check (here: the mesh token
    on every method, plain gRPC being allowed off loopback)."""
    monkeypatch.delenv("LLMAAS_TLS", raising=False)
    monkeypatch.setenv("LLMAAS_MESH_ALLOW_PLAIN", "1")
    monkeypatch.setenv("LLMAAS_MESH_TOKEN", "t0ken")
    worker = WorkerServer(_Engine(Draining()), SERVED)  # type: ignore[arg-type]
    port = await worker.start("127.0.0.1:0")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:  # no token
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await worker_pb2_grpc.WorkerStub(channel).CountTokens(worker_pb2.GenerateRequest())
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await worker.drain_and_stop(timeout_s=0)


# -- stopping ---------------------------------------------------------------------------


class _Server:
    def __init__(self, stop_hangs: bool = False) -> None:
        self.started = 0
        self.stopped_with: list[float | None] = []
        self.stop_hangs = stop_hangs

    async def start(self) -> None:
        self.started += 1

    async def stop(self, grace: float | None) -> None:
        self.stopped_with.append(grace)
        if self.stop_hangs and grace is not None:
            await asyncio.Event().wait()


async def test_without_a_drain_the_stop_is_the_servers_graceful_one() -> None:
    server = _Server()
    assert await rpc.stop_bounded(server, None, hurry=asyncio.Event(), grace_s=3.0) is True
    assert server.stopped_with == [3.0]


async def test_a_second_signal_cuts_a_hanging_stop_short() -> None:
    server = _Server(stop_hangs=True)
    hurry = asyncio.Event()
    hurry.set()
    # No bound: only `hurry` can end this stop before the test times out.
    assert await rpc.stop_bounded(server, None, hurry=hurry, grace_s=3.0) is False
    assert server.stopped_with == [3.0, None]


async def test_serve_until_signal_starts_runs_and_stops_on_sigterm() -> None:
    server = _Server()
    drained: list[bool] = []

    async def ready() -> None:  # the handlers are installed: the signal is caught
        os.kill(os.getpid(), signal.SIGTERM)

    async def drain() -> None:
        drained.append(True)

    loop = asyncio.get_running_loop()
    try:
        graceful = await rpc.serve_until_signal(server, on_ready=ready, on_stop=drain)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    assert graceful is True
    assert server.started == 1 and drained == [True]
    assert server.stopped_with == []  # the drain stops the server itself
