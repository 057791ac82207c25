"""AsyncLLMEngine with the fake runner: coalescing for slow consumers, cancel -> abort."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.worker.fakes import FakeRunner, FakeTokenizer
from worker.async_engine import AsyncLLMEngine
from worker.engine import LLMEngine
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
