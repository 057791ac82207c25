"""AsyncLLMEngine with the fake runner: coalescing for slow consumers, cancel -> abort."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.worker.fakes import FakeRunner, FakeTokenizer
from worker.async_engine import COALESCE_FROM_STREAMS, AsyncLLMEngine, RequestStream
from worker.engine import LLMEngine
from worker.outputs import StepOutput
from worker.sampling_params import SamplingParams


def _engine() -> LLMEngine:
    runner = FakeRunner(max_model_len=100_000)
    return LLMEngine(runner, FakeTokenizer(), FakeTokenizer.eos_token_ids)  # type: ignore[arg-type]


def _async_engine() -> AsyncLLMEngine:
    return AsyncLLMEngine(_engine)


async def test_slow_consumer_gets_merged_deltas() -> None:
    engine = _async_engine()
    engine.start()
    try:
        outputs = []
        async for output in engine.generate("r", [1], SamplingParams(max_tokens=20)):
            outputs.append(output)
            await asyncio.sleep(0.05)  # the engine runs ahead meanwhile
        assert sum(o.num_tokens for o in outputs) == 20
        assert len(outputs) < 20
        assert "".join(o.text for o in outputs) == "cdefghijklmnopqrstuv"
        assert outputs[-1].usage is not None and outputs[-1].usage.completion_tokens == 20
    finally:
        await engine.stop()


async def test_closing_the_stream_aborts_the_sequence() -> None:
    engine = _async_engine()
    engine.start()
    try:
        stream = engine.generate("r", [1], SamplingParams(max_tokens=90_000, ignore_eos=True))
        await anext(stream)
        await stream.aclose()
        for _ in range(100):
            if engine.load().num_running == 0:
                break
            await asyncio.sleep(0.01)
        load = engine.load()
        assert (load.num_running, load.num_cancelled_total) == (0, 1)
        assert engine.num_active == 0
    finally:
        await engine.stop()


async def test_the_engine_is_built_and_stepped_on_one_thread() -> None:
    # torch kernels on a second thread make libgomp throttle its spin-wait (see async_engine)
    threads: dict[str, int] = {}
    inner = _engine()

    def build() -> LLMEngine:
        threads["build"] = threading.get_ident()
        step = inner.step

        def recording_step() -> list:
            threads["step"] = threading.get_ident()
            return step()

        inner.step = recording_step  # type: ignore[method-assign]
        return inner

    engine = AsyncLLMEngine(build)
    engine.start()
    try:
        async for _ in engine.generate("r", [1], SamplingParams(max_tokens=2)):
            pass
    finally:
        await engine.stop()
    assert threads["build"] == threads["step"] != threading.get_ident()


def test_a_failed_build_raises_from_the_constructor() -> None:
    def build() -> LLMEngine:
        raise FileNotFoundError("no such model")

    with pytest.raises(FileNotFoundError, match="no such model"):
        AsyncLLMEngine(build)


class _SlowRunner(FakeRunner):
    """A decode step takes 5 ms, as a real one does (so consumers keep up without holding)."""

    def decode(self, slots: list[int], token_ids: list[int], positions: list[int]):
        time.sleep(0.005)
        return super().decode(slots, token_ids, positions)


async def _messages_per_stream(engine: AsyncLLMEngine, streams: int, tokens: int) -> list[list]:
    async def consume(i: int) -> list:
        params = SamplingParams(max_tokens=tokens, ignore_eos=True)
        return [o async for o in engine.generate(f"r{i}", [1], params)]

    engine.start()
    try:
        return await asyncio.gather(*(consume(i) for i in range(streams)))
    finally:
        await engine.stop()


def _slow_engine(interval_s: float) -> AsyncLLMEngine:
    def build() -> LLMEngine:
        runner = _SlowRunner(num_slots=16, max_model_len=1000)
        return LLMEngine(runner, FakeTokenizer(), FakeTokenizer.eos_token_ids)  # type: ignore[arg-type]

    return AsyncLLMEngine(build, stream_interval_s=interval_s)


async def test_a_busy_engine_sends_each_stream_merged_deltas_at_the_interval() -> None:
    busy = COALESCE_FROM_STREAMS
    held = await _messages_per_stream(_slow_engine(0.05), busy, tokens=40)
    for messages in held:
        assert sum(m.num_tokens for m in messages) == 40 and messages[-1].is_finished
        assert messages[0].num_tokens == 1  # the first token is never held
        assert len(messages) <= 12  # ~40 tokens x 5 ms / 50 ms, not one message per token
    quiet = await _messages_per_stream(_slow_engine(0.05), busy - 1, tokens=40)
    assert all(len(messages) >= 30 for messages in quiet)  # few streams: token by token


async def test_holding_never_delays_the_end_of_a_stream() -> None:
    engine = _slow_engine(5.0)  # far longer than the whole generation
    started = time.monotonic()
    held = await _messages_per_stream(engine, COALESCE_FROM_STREAMS, tokens=20)
    assert time.monotonic() - started < 2.0
    assert all(messages[-1].is_finished for messages in held)


async def test_an_error_after_pending_output_reaches_the_consumer() -> None:
    stream = RequestStream()
    stream.put(StepOutput("r", "ab", 2, None))
    stream.fail(RuntimeError("the engine failed"))
    assert (await asyncio.wait_for(stream.get(), 1)).text == "ab"
    with pytest.raises(RuntimeError, match="engine failed"):
        await asyncio.wait_for(stream.get(), 1)  # not a hang
