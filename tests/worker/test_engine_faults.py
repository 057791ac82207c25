"""Issue #14 point 16: a failed engine step. The failed step's requests get UNAVAILABLE and
the engine serves on; when steps keep failing the worker stops saying SERVING and exits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from tests.worker.fakes import FailingRunner, FakeTokenizer
from worker import service
from worker.async_engine import MAX_CONSECUTIVE_STEP_FAILURES, AsyncLLMEngine
from worker.engine import LLMEngine
from worker.errors import EngineFailed
from worker.loader import LoadedModel
from worker.model_runner import ModelRunner
from worker.sampling_params import SamplingParams
from worker.service import FATAL_EXIT_CODE, ServedModel, WorkerServer


def _async_engine(runner: FailingRunner) -> AsyncLLMEngine:
    return AsyncLLMEngine(lambda: LLMEngine(runner, FakeTokenizer(), FakeTokenizer.eos_token_ids))  # type: ignore[arg-type]


async def _generate(engine: AsyncLLMEngine, prompt: str = "abc", max_tokens: int = 3) -> int:
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
    return sum([o.num_tokens async for o in engine.generate("r", prompt, params)])


async def test_a_failed_step_fails_its_requests_and_the_engine_serves_on() -> None:
    runner = FailingRunner(failures=1, num_slots=4, max_model_len=100)
    engine = _async_engine(runner)
    engine.start()
    try:
        with pytest.raises(EngineFailed, match="retry"):
            await _generate(engine)
        load = engine.load()
        assert (load.num_running, load.num_waiting, engine.num_active) == (0, 0, 0)
        assert engine.engine.scheduler.slots.num_used == 0  # the failed step's slot is free
        assert await _generate(engine, max_tokens=5) == 5  # later requests succeed
        assert not engine.is_failed
    finally:
        await engine.stop()


async def test_steps_failing_in_a_row_take_the_engine_down() -> None:
    runner = FailingRunner(failures=10**6)
    engine = _async_engine(runner)
    down: list[BaseException] = []
    engine.on_fatal = down.append
    engine.start()
    try:
        for _ in range(MAX_CONSECUTIVE_STEP_FAILURES):
            with pytest.raises(EngineFailed):
                await _generate(engine)
        assert engine.is_failed and len(down) == 1
        with pytest.raises(EngineFailed, match="down"):  # refused at once, not queued
            await _generate(engine)
    finally:
        await engine.stop()


# -- the gRPC server -------------------------------------------------------------------


@pytest.fixture
async def failing_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WorkerServer]:
    monkeypatch.setattr(service, "FATAL_EXIT_GRACE_S", 0.0)
    exits: list[int] = []
    engine = _async_engine(FailingRunner(failures=10**6))
    served = ServedModel("fake", 100, "w-fault", 4, "cpu", "float32")
    server = WorkerServer(engine, served, exit_process=exits.append)
    server.exits = exits  # type: ignore[attr-defined]
    await server.start("127.0.0.1:0")
    yield server
    await server.drain_and_stop(timeout_s=0)


async def test_a_worker_whose_engine_is_down_is_not_serving_and_exits(
    failing_server: WorkerServer,
) -> None:
    request = worker_pb2.GenerateRequest(
        prompt="abc", sampling=common_pb2.SamplingParams(max_tokens=2)
    )
    async with grpc.aio.insecure_channel(f"127.0.0.1:{failing_server.port}") as channel:
        stub, health = worker_pb2_grpc.WorkerStub(channel), health_pb2_grpc.HealthStub(channel)
        for _ in range(MAX_CONSECUTIVE_STEP_FAILURES + 1):  # the last one finds it down
            with pytest.raises(grpc.aio.AioRpcError) as info:
                async for _ in stub.Generate(request):
                    pass
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # the router fails over
            assert "retry" in info.value.details()
        await asyncio.wait_for(failing_server.failed.wait(), 30)  # a bound, not a race
        for name in ("", service.SERVICE_NAME):
            status = await health.Check(health_pb2.HealthCheckRequest(service=name))
            assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (await stub.GetLoad(worker_pb2.LoadRequest())).draining
    for _ in range(100):  # call_later(0): the next loop iterations
        if failing_server.exits:  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0)
    assert failing_server.exits == [FATAL_EXIT_CODE]  # type: ignore[attr-defined]


# -- the real SmolLM2 ------------------------------------------------------------------


@pytest.mark.slow
async def test_after_a_failed_step_the_real_engine_answers_as_before(
    smollm2: LoadedModel, make_runner: Callable[..., ModelRunner]
) -> None:
    """The failed forward leaves garbage in the KV cache; the reset scheduler must not reuse
    it (no prefix cache entry survives), so the same greedy request gives the same text."""
    runner = make_runner(smollm2, max_num_seqs=2, max_model_len=128)
    tok = smollm2.tokenizer
    engine = AsyncLLMEngine(lambda: LLMEngine(runner, tok, smollm2.eos_token_ids))
    params = SamplingParams(temperature=0, max_tokens=8, ignore_eos=True)
    prompt = [{"role": "user", "content": "Tell me about dragons."}]

    async def text() -> str:
        return "".join([o.text async for o in engine.generate("r", prompt, params)])

    decode, calls = runner.decode, []

    def failing_decode(slots: list[int], token_ids: list[int], positions: list[int]):
        calls.append(1)
        if len(calls) == 3:  # mid-sequence: its slot holds a cached prefix by now
            runner.k_cache.normal_()
            runner.v_cache.normal_()
            raise RuntimeError("injected: the decode failed")
        return decode(slots, token_ids, positions)

    engine.start()
    try:
        before = await text()
        runner.decode = failing_decode  # type: ignore[method-assign]
        calls.clear()
        with pytest.raises(EngineFailed):
            await text()
        assert await text() == before
        assert not engine.is_failed and engine.load().num_running == 0
    finally:
        await engine.stop()
