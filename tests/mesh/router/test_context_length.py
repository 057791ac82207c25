"""The router's context-length pre-check: request validation before the security filter."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from router_fakes import FakeWorker, chat

from mesh.errors import ContextLengthExceeded, from_rpc_error
from mesh.pb import common_pb2, inference_pb2
from mesh.router.pipeline import context_length

pytestmark = pytest.mark.timeout(30)

FILLER = "word " * 5000  # what clients send to probe the limit; the filter calls it repetition


def _worker(context_length: int = 1024) -> FakeWorker:
    worker = FakeWorker("w1", ("chat:1m",))
    worker.context_length = context_length
    return worker


def _varied(num_words: int) -> str:
    return " ".join(f"w{i}" for i in range(num_words))


def _chat(text: str, max_tokens: int = 8) -> inference_pb2.ChatCompletionRequest:
    request = chat(text=text)
    request.sampling.max_tokens = max_tokens
    return request


async def _error(call):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        [chunk async for chunk in call]
    return from_rpc_error(info.value)


async def test_filler_over_the_window_is_context_length_exceeded_not_prompt_rejected(make_mesh):
    mesh = await make_mesh([_worker(1024)])
    err = await _error(mesh.stub.ChatCompletion(_chat(FILLER), metadata=mesh.md()))
    assert (err.http_status, err.code, err.param) == (400, "context_length_exceeded", "messages")
    assert err.message.startswith(
        "This model's maximum context length is 1024 tokens; your prompt has 5004 tokens "
        "and max_tokens asks for 8"
    )
    worker = mesh.workers[0]
    assert len(worker.count_calls) == 1 and worker.count_calls[0].model == "chat:1m"
    assert mesh.filter.calls == []  # never screened
    assert worker.calls == []  # never generated
    record = mesh.access.records[-1]
    assert (record.outcome, record.status) == ("refused", 400)


async def test_completion_prompt_over_the_window(make_mesh):
    mesh = await make_mesh([_worker(1024)])
    request = inference_pb2.CompletionRequest(
        model="chat:1m", prompt=FILLER, sampling=common_pb2.SamplingParams(max_tokens=8)
    )
    err = await _error(mesh.stub.Completion(request, metadata=mesh.md()))
    assert (err.http_status, err.code) == (400, "context_length_exceeded")
    assert mesh.workers[0].count_calls[0].prompt == FILLER
    assert mesh.filter.calls == [] and mesh.workers[0].calls == []


async def test_short_prompt_takes_the_fast_path(make_mesh):
    mesh = await make_mesh([_worker(1024)])
    chunks = [c async for c in mesh.stub.ChatCompletion(_chat("hi"), metadata=mesh.md())]
    assert chunks[-1].finish_reason == common_pb2.FINISH_REASON_STOP
    assert mesh.workers[0].count_calls == []  # no extra call
    assert len(mesh.filter.calls) == 1 and len(mesh.workers[0].calls) == 1


async def test_long_prompt_that_fits_is_counted_then_screened_and_generated(make_mesh):
    mesh = await make_mesh([_worker(4096)])
    text = _varied(1000)  # ~4.9 kB: could overflow by bytes, 1004 tokens do fit
    chunks = [c async for c in mesh.stub.ChatCompletion(_chat(text), metadata=mesh.md())]
    assert chunks[-1].finish_reason == common_pb2.FINISH_REASON_STOP
    assert len(mesh.workers[0].count_calls) == 1
    assert len(mesh.filter.calls) == 1 and len(mesh.workers[0].calls) == 1


async def test_filler_that_fits_is_still_screened(make_mesh):
    mesh = await make_mesh([_worker(8192)])
    err = await _error(mesh.stub.ChatCompletion(_chat(FILLER), metadata=mesh.md()))
    assert (err.http_status, err.code) == (400, "prompt_rejected")
    assert len(mesh.workers[0].count_calls) == 1 and len(mesh.filter.calls) == 1
    assert mesh.workers[0].calls == []


async def test_max_tokens_past_the_window_names_max_tokens(make_mesh):
    mesh = await make_mesh([_worker(1024)])
    err = await _error(
        mesh.stub.ChatCompletion(_chat(_varied(500), max_tokens=600), metadata=mesh.md())
    )
    assert (err.code, err.param) == ("context_length_exceeded", "max_tokens")
    assert "your prompt has 504 tokens and max_tokens asks for 600" in err.message
    assert mesh.filter.calls == [] and mesh.workers[0].calls == []


async def test_unset_max_tokens_overflows_only_when_the_prompt_fills_the_window(make_mesh):
    mesh = await make_mesh([_worker(1024)])
    fits = _varied(1000)  # 1004 tokens < 1024: room for 20, so no error
    chunks = [
        c async for c in mesh.stub.ChatCompletion(_chat(fits, max_tokens=0), metadata=mesh.md())
    ]
    assert chunks[-1].finish_reason == common_pb2.FINISH_REASON_STOP
    err = await _error(
        mesh.stub.ChatCompletion(_chat(_varied(1020), max_tokens=0), metadata=mesh.md())
    )
    assert (err.code, err.param) == ("context_length_exceeded", "messages")
    assert "1024 tokens; your prompt has 1024 tokens, which leaves no room" in err.message
    assert len(mesh.workers[0].count_calls) == 2 and len(mesh.workers[0].calls) == 1


class NoCountWorker(FakeWorker):
    async def CountTokens(self, request, context):
        self.count_calls.append(request)
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "old worker")


async def test_a_worker_without_count_tokens_leaves_the_normal_path(make_mesh):
    worker = NoCountWorker("w1", ("chat:1m",))
    worker.context_length = 1024
    mesh = await make_mesh([worker])
    err = await _error(mesh.stub.ChatCompletion(_chat(FILLER), metadata=mesh.md()))
    assert err.code == "prompt_rejected"  # the filter still screens; nothing generated
    assert len(worker.count_calls) == 1 and len(mesh.filter.calls) == 1 and worker.calls == []


# The prompt of issue #14 point 1 (590 KB, `max_tokens: 1`).
ISSUE_PROMPT = "Add up the following numbers: " + " ".join(str(i) for i in range(100_000))


async def test_a_prompt_that_cannot_fit_is_refused_by_its_bytes_and_never_tokenised(make_mesh):
    """Nothing tokenises it (no CountTokens, no Generate) and the filter never sees it."""
    mesh = await make_mesh([_worker(8192)])
    err = await _error(
        mesh.stub.ChatCompletion(_chat(ISSUE_PROMPT, max_tokens=1), metadata=mesh.md())
    )
    assert (err.http_status, err.code, err.param) == (400, "context_length_exceeded", "messages")
    assert err.message.startswith("This model's maximum context length is 8192 tokens; your ")
    assert "at least" in err.message
    worker = mesh.workers[0]
    assert worker.count_calls == [] and worker.calls == [] and mesh.filter.calls == []
    record = mesh.access.records[-1]
    assert (record.outcome, record.status) == ("refused", 400)


async def test_a_completion_prompt_that_cannot_fit_names_prompt(make_mesh):
    mesh = await make_mesh([_worker(8192)])
    request = inference_pb2.CompletionRequest(model="chat:1m", prompt=ISSUE_PROMPT)
    err = await _error(mesh.stub.Completion(request, metadata=mesh.md()))
    assert (err.code, err.param) == ("context_length_exceeded", "prompt")
    assert mesh.workers[0].count_calls == [] and mesh.filter.calls == []


async def test_max_tokens_past_what_the_bytes_leave_is_refused_untokenised(make_mesh):
    mesh = await make_mesh([_worker(1024)])
    text = "abcd" * 4000  # 16,000 runs: at least 500 tokens whatever the vocabulary
    err = await _error(mesh.stub.ChatCompletion(_chat(text, max_tokens=600), metadata=mesh.md()))
    assert (err.code, err.param) == ("context_length_exceeded", "max_tokens")
    assert "at least 500 tokens" in err.message
    assert mesh.workers[0].count_calls == [] and mesh.filter.calls == []


class HangingCountWorker(FakeWorker):
    """CountTokens never answers (a busy worker); Generate refuses the length itself."""

    async def CountTokens(self, request, context):
        self.count_calls.append(request)
        await asyncio.Event().wait()

    async def Generate(self, request, context):
        self.calls.append(request)
        err = ContextLengthExceeded("This model's maximum context length is 1024 tokens.")
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, err.message, trailing_metadata=err.trailing_metadata()
        )
        yield  # a streaming handler (never reached)


async def test_a_count_tokens_timeout_leaves_the_refusal_to_the_worker_never_a_503(
    make_mesh, monkeypatch
):
    monkeypatch.setattr(context_length, "COUNT_TOKENS_TIMEOUT_S", 0.05)
    worker = HangingCountWorker("w1", ("chat:1m",))
    worker.context_length = 1024
    mesh = await make_mesh([worker])
    err = await _error(mesh.stub.ChatCompletion(_chat(_varied(1100)), metadata=mesh.md()))
    assert (err.http_status, err.code) == (400, "context_length_exceeded")
    assert len(worker.count_calls) == 1 and len(worker.calls) == 1


# -- the floor uses the serving workers' vocabulary limits (Info) -------------------------------


class LimitsWorker(FakeWorker):
    """Says its vocabulary's limits in Info, as real workers do (None: says nothing)."""

    def __init__(self, worker_id: str, max_bytes: int | None, max_runs: int | None) -> None:
        super().__init__(worker_id, ("chat:1m",))
        self.context_length = 2048
        self.limits = (max_bytes, max_runs)

    async def Info(self, request, context):
        info = await super().Info(request, context)
        max_bytes, max_runs = self.limits
        for model in info.models:
            if max_bytes is not None:
                model.max_token_bytes = max_bytes
            if max_runs is not None:
                model.max_token_runs = max_runs
        return info


# One word of 80,000 bytes in 80,000 runs: the default limits (128 bytes, 32 runs a token)
# prove >= 2,500 tokens, over the 2,048 window; a vocabulary with longer tokens may hold it.
LONG_TOKENS_TEXT = "ab" * 40_000


async def test_the_default_limits_refuse_what_a_byte_level_vocabulary_cannot_hold(make_mesh):
    mesh = await make_mesh([LimitsWorker("w1", None, None)])  # a worker that does not say
    err = await _error(mesh.stub.ChatCompletion(_chat(LONG_TOKENS_TEXT), metadata=mesh.md()))
    assert (err.http_status, err.code) == (400, "context_length_exceeded")
    assert "at least 2500 tokens" in err.message
    assert mesh.workers[0].count_calls == []


@pytest.mark.parametrize(
    "limits",
    [(100_000, 100_000), (0, 0), (100_000, 0)],
    ids=["long tokens", "no sound bound", "bytes only"],
)
async def test_a_workers_own_limits_let_its_long_tokens_through(make_mesh, limits):
    worker = LimitsWorker("w1", *limits)
    mesh = await make_mesh([worker])
    chunks = [
        c async for c in mesh.stub.ChatCompletion(_chat(LONG_TOKENS_TEXT), metadata=mesh.md())
    ]
    assert "".join(c.text for c in chunks) == "Hello!"
    assert len(worker.count_calls) == 1  # the worker counted: the floor did not refuse


async def test_a_workers_tighter_limits_refuse_before_tokenising(make_mesh):
    worker = LimitsWorker("w1", 4, 2)  # a small vocabulary: at most 2 runs a token
    mesh = await make_mesh([worker])
    text = _varied(1000)  # ~5,900 bytes: fits the default limits' floor (~185 tokens)
    err = await _error(mesh.stub.ChatCompletion(_chat(text), metadata=mesh.md()))
    assert (err.http_status, err.code) == (400, "context_length_exceeded")
    assert worker.count_calls == [] and worker.calls == [] and mesh.filter.calls == []


async def test_one_worker_without_a_sound_bound_drops_the_floor(make_mesh):
    sound, unsound = LimitsWorker("w1", 81, 25), LimitsWorker("w2", 0, 0)
    mesh = await make_mesh([sound, unsound])
    chunks = [
        c async for c in mesh.stub.ChatCompletion(_chat(LONG_TOKENS_TEXT), metadata=mesh.md())
    ]
    assert chunks and len(sound.count_calls) + len(unsound.count_calls) == 1
