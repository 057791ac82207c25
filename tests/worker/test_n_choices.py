"""n > 1: choices fork after the prompt's prefill (engine, fake runner) and come back with
their index and one summed usage (the Worker gRPC service over the real SmolLM2)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from mesh.errors import MD_ERROR_PARAM
from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from tests.worker.fakes import FakeRunner, FakeTokenizer
from worker.async_engine import AsyncLLMEngine
from worker.engine import LLMEngine
from worker.loader import LoadedModel
from worker.model_runner import ModelRunner
from worker.outputs import StepOutput
from worker.sampling_params import SamplingParams
from worker.sequence import FinishReason
from worker.service import ServedModel, WorkerServer


def _engine(runner: FakeRunner) -> LLMEngine:
    return LLMEngine(runner, FakeTokenizer(), FakeTokenizer.eos_token_ids, seed=0)  # type: ignore[arg-type]


def _run(engine: LLMEngine, max_steps: int = 100) -> list[StepOutput]:
    outputs: list[StepOutput] = []
    for _ in range(max_steps):
        if not engine.has_unfinished():
            break
        outputs += engine.step()
    return outputs


def _texts(outputs: list[StepOutput], request_id: str) -> dict[int, str]:
    texts: dict[int, str] = {}
    for out in outputs:
        if out.request_id == request_id:
            texts[out.index] = texts.get(out.index, "") + out.text
    return texts


def test_prompt_is_prefilled_once_and_choices_fork_its_kv() -> None:
    runner = FakeRunner(num_slots=4)
    engine = _engine(runner)
    engine.add_request("r", list(range(10)), SamplingParams(n=3, max_tokens=4, ignore_eos=True))
    outputs = _run(engine)
    assert runner.prefills == [(0, 0, 10)]  # one prompt row, computed once
    assert sorted(runner.copies) == [(0, 1, 10), (0, 2, 10)]  # the whole prompt's K/V
    assert _texts(outputs, "r") == {0: "klmn", 1: "klmn", 2: "klmn"}  # fake: last + 1
    finished = [o for o in outputs if o.is_finished]
    assert sorted(o.index for o in finished) == [0, 1, 2]
    assert all(o.finish_reason is FinishReason.LENGTH for o in finished)
    # usage once, on the request's last output: the prompt once, the outputs summed
    assert [o.usage is not None for o in outputs] == [False] * (len(outputs) - 1) + [True]
    usage = outputs[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (10, 12)
    assert engine.scheduler.slots.num_free == 4


def test_a_choice_without_a_free_slot_waits_and_reuses_the_prompt() -> None:
    runner = FakeRunner(num_slots=2)
    engine = _engine(runner)
    engine.add_request("busy", [1], SamplingParams(max_tokens=3, ignore_eos=True))
    engine.step()
    engine.add_request("r", list(range(10)), SamplingParams(n=2, max_tokens=2, ignore_eos=True))
    outputs = _run(engine)
    assert _texts(outputs, "r") == {0: "kl", 1: "kl"}
    # the second choice came in later through the prefix cache: one token computed again
    prompt_rows = [(start, n) for _, start, n in runner.prefills if n > 1 or start > 0]
    assert prompt_rows == [(0, 10), (9, 1)]
    usage = [o.usage for o in outputs if o.request_id == "r" and o.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens == 4


def test_each_choice_draws_its_own_seeded_numbers() -> None:
    """Choice i of a seeded request draws as a one-choice request seeded seed + i would."""
    prompt, params = [3, 4, 5], SamplingParams(temperature=1.0, max_tokens=6, ignore_eos=True)
    engine = _engine(FakeRunner(num_slots=4))
    engine.add_request("n", prompt, SamplingParams(**{**_fields(params), "n": 3, "seed": 7}))
    together = _texts(_run(engine), "n")
    for i in range(3):
        alone = _engine(FakeRunner(num_slots=4))
        alone.add_request("one", prompt, SamplingParams(**{**_fields(params), "seed": 7 + i}))
        assert _texts(_run(alone), "one")[0] == together[i]
    assert len(set(together.values())) > 1


def _fields(params: SamplingParams) -> dict[str, object]:
    return {"temperature": params.temperature, "max_tokens": params.max_tokens, "ignore_eos": True}


def test_abort_cancels_every_choice_forked_or_not() -> None:
    engine = _engine(FakeRunner(num_slots=4))
    engine.add_request("r", list(range(4)), SamplingParams(n=3, max_tokens=50, ignore_eos=True))
    engine.step()  # prefilled and forked
    engine.abort("r")
    cancelled = [o for o in engine.step() if o.request_id == "r"]
    assert sorted(o.index for o in cancelled) == [0, 1, 2]
    assert all(o.finish_reason is FinishReason.CANCELLED for o in cancelled)
    assert [o.usage is not None for o in cancelled] == [False, False, True]
    assert engine.scheduler.slots.num_free == 4 and not engine.has_unfinished()
    # aborted while still waiting: the forks never made are cancelled too
    engine.add_request("w", list(range(4)), SamplingParams(n=2, max_tokens=5))
    engine.abort("w")
    cancelled = [o for o in engine.step() if o.request_id == "w"]
    assert sorted(o.index for o in cancelled) == [0, 1]


def test_n_is_bounded_by_the_slots() -> None:
    from worker.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as info:
        _engine(FakeRunner(num_slots=2)).add_request("r", [1], SamplingParams(n=3))
    assert info.value.param == "n"


# -- over gRPC, the real model ---------------------------------------------------------

MESSAGES = [common_pb2.ChatMessage(role="user", content="Name a color.")]


@pytest.fixture
async def stub(
    smollm2: LoadedModel, make_runner: Callable[..., ModelRunner]
) -> AsyncIterator[worker_pb2_grpc.WorkerStub]:
    runner = make_runner(smollm2, max_num_seqs=4, max_model_len=256)
    engine = LLMEngine(runner, smollm2.tokenizer, smollm2.eos_token_ids)
    served = ServedModel("smollm2:135m", 256, "w-test", 4, "cpu", "float32")
    worker = WorkerServer(AsyncLLMEngine(lambda: engine), served)
    await worker.start("127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{worker.port}") as channel:
        yield worker_pb2_grpc.WorkerStub(channel)
    await worker.drain_and_stop(timeout_s=0)


@pytest.mark.slow
async def test_three_choices_over_grpc_with_one_summed_usage(
    stub: worker_pb2_grpc.WorkerStub, smollm2: LoadedModel
) -> None:
    request = worker_pb2.GenerateRequest(
        request_id="n3",
        model="smollm2:135m",
        chat=worker_pb2.ChatPrompt(messages=MESSAGES),
        sampling=common_pb2.SamplingParams(
            n=3, temperature=1.0, seed=11, max_tokens=8, ignore_eos=True
        ),
    )
    responses = [r async for r in stub.Generate(request)]
    texts: dict[int, str] = {}
    for r in responses:
        texts[r.index] = texts.get(r.index, "") + r.text
    assert sorted(texts) == [0, 1, 2] and len(set(texts.values())) > 1
    finished = [r for r in responses if r.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED]
    assert sorted(r.index for r in finished) == [0, 1, 2]
    assert [r.HasField("usage") for r in responses] == [False] * (len(responses) - 1) + [True]
    prompt_ids, _ = smollm2.tokenizer.render_chat([{"role": "user", "content": "Name a color."}])
    usage = responses[-1].usage
    assert usage.prompt_tokens == len(prompt_ids)  # once, not three times
    assert usage.completion_tokens == 24 == sum(r.num_tokens for r in responses)


@pytest.mark.slow
async def test_n_past_the_slots_names_the_param(stub: worker_pb2_grpc.WorkerStub) -> None:
    request = worker_pb2.GenerateRequest(
        model="smollm2:135m",
        prompt="Hi",
        sampling=common_pb2.SamplingParams(n=5, max_tokens=2),
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.Generate(request):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(info.value.trailing_metadata())[MD_ERROR_PARAM] == "n"
