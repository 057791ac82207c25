"""AsyncLLMEngine with the fake runner: coalescing for slow consumers, cancel -> abort."""

from __future__ import annotations

import asyncio

from tests.worker.fakes import FakeRunner, FakeTokenizer
from worker.async_engine import AsyncLLMEngine
from worker.engine import LLMEngine
from worker.sampling_params import SamplingParams


def _async_engine() -> AsyncLLMEngine:
    runner = FakeRunner(max_model_len=100_000)
    engine = LLMEngine(runner, FakeTokenizer(), FakeTokenizer.eos_token_ids)  # type: ignore[arg-type]
    return AsyncLLMEngine(engine)


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
