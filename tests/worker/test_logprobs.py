"""logprobs over the real SmolLM2: the engine's values against a log-softmax computed
separately (a fresh runner, each position prefilled from scratch); then the Worker gRPC
service's decoding options: logprobs shapes, echo, response_format, logit_bias errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
import torch

from mesh.errors import MD_ERROR_PARAM
from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from worker.async_engine import AsyncLLMEngine
from worker.engine import LLMEngine
from worker.loader import LoadedModel
from worker.logprobs import TokenLogprobs, TokenTexts, to_pb
from worker.model_runner import ModelRunner
from worker.sampling_params import SamplingParams
from worker.service import ServedModel, WorkerServer

pytestmark = pytest.mark.slow

PROMPT = "The capital of France is"


def _generate(
    engine: LLMEngine, params: SamplingParams
) -> tuple[list[int], list[int], list[TokenLogprobs]]:
    seq = engine.add_request("lp", PROMPT, params)
    entries: list[TokenLogprobs] = []
    while engine.has_unfinished():
        for out in engine.step():
            entries += out.logprobs
    return seq.prompt_ids, seq.output_ids, entries


def _reference(
    smollm2: LoadedModel, make_runner: Callable[..., ModelRunner], ids: list[int], n: int
) -> list[torch.Tensor]:
    """log_softmax of the model's logits after ids[:len(ids)-n+k], k = 0..n-1: each position
    prefilled from scratch in a fresh runner (no decode path, no sampler)."""
    runner = make_runner(smollm2, max_num_seqs=1, max_model_len=256)
    start = len(ids) - n
    return [
        torch.log_softmax(runner.prefill_batch([0], [ids[: start + k]], [0])[0].float(), dim=-1)
        for k in range(n)
    ]


def test_logprobs_match_a_separate_log_softmax(
    smollm2: LoadedModel, make_runner: Callable[..., ModelRunner]
) -> None:
    engine = LLMEngine(make_runner(smollm2), smollm2.tokenizer, smollm2.eos_token_ids, seed=0)
    params = SamplingParams(max_tokens=6, ignore_eos=True, logprobs=True, top_logprobs=5)
    prompt_ids, output_ids, entries = _generate(engine, params)
    assert [e.token_id for e in entries] == output_ids and len(entries) == 6
    reference = _reference(smollm2, make_runner, prompt_ids + output_ids, 6)
    for entry, expected in zip(entries, reference, strict=True):
        assert entry.logprob == pytest.approx(expected[entry.token_id].item(), abs=2e-3)
        top = expected.topk(5)
        assert [t for t, _ in entry.top] == top.indices.tolist()
        assert [lp for _, lp in entry.top] == pytest.approx(top.values.tolist(), abs=2e-3)
        assert entry.top[0][0] == entry.token_id  # greedy: the best token was chosen


def test_logprobs_come_after_logit_bias(
    smollm2: LoadedModel, make_runner: Callable[..., ModelRunner]
) -> None:
    engine = LLMEngine(make_runner(smollm2), smollm2.tokenizer, smollm2.eos_token_ids, seed=0)
    paris = smollm2.tokenizer.encode(" Paris")[0]
    bias = ((paris, -5.0),)
    params = SamplingParams(max_tokens=1, logit_bias=bias, logprobs=True, top_logprobs=3)
    prompt_ids, output_ids, entries = _generate(engine, params)
    runner = make_runner(smollm2, max_num_seqs=1, max_model_len=256)
    logits = runner.prefill_batch([0], [prompt_ids], [0])[0].float().clone()
    logits[paris] -= 5.0
    expected = torch.log_softmax(logits, dim=-1)
    assert entries[0].token_id == output_ids[0] == expected.argmax().item()
    assert entries[0].logprob == pytest.approx(expected[output_ids[0]].item(), abs=2e-3)


# -- the gRPC service -------------------------------------------------------------------


@pytest.fixture
async def stub(
    smollm2: LoadedModel, make_runner: Callable[..., ModelRunner]
) -> AsyncIterator[worker_pb2_grpc.WorkerStub]:
    engine = LLMEngine(make_runner(smollm2), smollm2.tokenizer, smollm2.eos_token_ids)
    served = ServedModel("smollm2:135m", 256, "w-test", 4, "cpu", "float32")
    worker = WorkerServer(AsyncLLMEngine(lambda: engine), served)
    await worker.start("127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{worker.port}") as channel:
        yield worker_pb2_grpc.WorkerStub(channel)
    await worker.drain_and_stop(timeout_s=0)


def _request(prompt: str | None = PROMPT, echo: bool = False, **sampling: object):
    request = worker_pb2.GenerateRequest(
        model="smollm2:135m", echo=echo, sampling=common_pb2.SamplingParams(**sampling)
    )
    if prompt is None:
        request.chat.messages.add(role="user", content="Hi")
    else:
        request.prompt = prompt
    return request


async def _collect(stub: worker_pb2_grpc.WorkerStub, request) -> list:
    return [r async for r in stub.Generate(request)]


async def _param_of_error(stub: worker_pb2_grpc.WorkerStub, request) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _collect(stub, request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return dict(info.value.trailing_metadata())[MD_ERROR_PARAM]


async def test_logprobs_shape_over_grpc(
    stub: worker_pb2_grpc.WorkerStub, smollm2: LoadedModel
) -> None:
    request = _request(max_tokens=5, ignore_eos=True, logprobs=True, top_logprobs=2)
    responses = await _collect(stub, request)
    entries = [e for r in responses for e in r.logprobs]
    assert len(entries) == 5 == sum(r.num_tokens for r in responses)
    assert "".join(e.token for e in entries) == "".join(r.text for r in responses)
    for e in entries:
        assert e.bytes == e.token.encode() and e.logprob <= 0.0
        assert len(e.top_logprobs) == 2 and e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob
    plain = await _collect(stub, _request(max_tokens=3))
    assert not any(r.logprobs for r in plain)


async def test_echo_puts_the_prompt_first(stub: worker_pb2_grpc.WorkerStub) -> None:
    responses = await _collect(stub, _request(echo=True, max_tokens=3, n=2, temperature=0))
    texts: dict[int, str] = {}
    for r in responses:
        texts[r.index] = texts.get(r.index, "") + r.text
    assert sorted(texts) == [0, 1] and all(t.startswith(PROMPT) for t in texts.values())
    assert len(texts[0]) > len(PROMPT)
    assert await _param_of_error(stub, _request(None, echo=True, max_tokens=2)) == "echo"
    with_logprobs = _request(echo=True, max_tokens=2, logprobs=True)
    assert await _param_of_error(stub, with_logprobs) == "echo"


async def test_response_format_over_grpc(stub: worker_pb2_grpc.WorkerStub) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 30},
            "population": {"type": "integer", "minimum": 0, "maximum": 100000000},
        },
        "required": ["city", "population"],
    }
    constraint = common_pb2.OutputConstraint(json_schema=json.dumps(schema))
    for temperature in (0.0, 1.0):
        request = _request(
            "A JSON object with the capital of France and its population: ",
            max_tokens=60,
            temperature=temperature,
            seed=3,
            constraint=constraint,
        )
        responses = await _collect(stub, request)
        answer = json.loads("".join(r.text for r in responses))
        assert set(answer) == {"city", "population"} and isinstance(answer["population"], int)
        assert responses[-1].finish_reason == common_pb2.FINISH_REASON_STOP
    bad = common_pb2.OutputConstraint(json_schema='{"type": "nope"}')
    assert await _param_of_error(stub, _request(max_tokens=5, constraint=bad)) == "response_format"


async def test_logit_bias_ids_are_checked_against_the_vocabulary(
    stub: worker_pb2_grpc.WorkerStub,
) -> None:
    request = _request(max_tokens=2, logit_bias={10**6: 1.0})
    assert await _param_of_error(stub, request) == "logit_bias"
    assert await _param_of_error(stub, _request(max_tokens=2, min_p=2.0)) == "min_p"


class _FakeTokenizer:
    """Token 0 is "Hi", 1 is a special end-of-turn token, 2 is " there"."""

    TEXT = {0: "Hi", 1: "<|im_end|>", 2: " there"}

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join("" if skip_special_tokens and i == 1 else self.TEXT[i] for i in ids)


def test_a_sampled_special_token_adds_nothing_to_the_text_but_keeps_its_id() -> None:
    """Under ignore_eos an end-of-turn token is sampled; the output text skips it, so its
    logprob entry shows empty text (its id and logprob kept), and the chosen tokens of a
    response join to exactly its text. Alternatives keep their own text."""
    entries = [TokenLogprobs(t, -0.5, [(1, -0.5), (2, -1.0)]) for t in (0, 1, 2)]
    pb = to_pb(entries, TokenTexts(_FakeTokenizer()))
    assert "".join(e.token for e in pb) == "Hi there"
    assert [(e.token, e.bytes, e.token_id) for e in pb][1] == ("", b"", 1)
    assert pb[0].top_logprobs[0].token == "<|im_end|>"
