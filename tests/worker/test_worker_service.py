"""The Worker gRPC service in-process (127.0.0.1:0) over the real SmolLM2."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.errors import MD_ERROR_CODE as ERROR_CODE_KEY
from mesh.errors import MD_ERROR_PARAM as ERROR_PARAM_KEY
from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from worker.async_engine import AsyncLLMEngine
from worker.engine import LLMEngine
from worker.loader import LoadedModel
from worker.model_runner import ModelRunner
from worker.service import ServedModel, WorkerServer

pytestmark = pytest.mark.slow

MESSAGES = [common_pb2.ChatMessage(role="user", content="Write a long story about a dragon.")]


@pytest.fixture
async def server(
    smollm2: LoadedModel, make_runner: Callable[..., ModelRunner]
) -> AsyncIterator[WorkerServer]:
    runner = make_runner(smollm2, max_num_seqs=2, max_model_len=256)
    engine = LLMEngine(runner, smollm2.tokenizer, smollm2.eos_token_ids, max_prefill_tokens=64)
    served = ServedModel("smollm2:135m", 256, "w-test", 2, "cpu", "float32")
    worker = WorkerServer(AsyncLLMEngine(lambda: engine), served)
    await worker.start("127.0.0.1:0")
    yield worker
    await worker.drain_and_stop(timeout_s=0)


@pytest.fixture
async def channel(server: WorkerServer) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel


def _chat(max_tokens: int, **sampling: object) -> worker_pb2.GenerateRequest:
    return worker_pb2.GenerateRequest(
        request_id="r1",
        model="smollm2:135m",
        chat=worker_pb2.ChatPrompt(messages=MESSAGES),
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens, **sampling),
    )


async def test_stream_and_exact_usage(channel: grpc.aio.Channel, smollm2: LoadedModel) -> None:
    stub = worker_pb2_grpc.WorkerStub(channel)
    responses = [r async for r in stub.Generate(_chat(12, ignore_eos=True))]
    last = responses[-1]
    prompt_ids, num_system = smollm2.tokenizer.render_chat(
        [{"role": "user", "content": MESSAGES[0].content}]
    )
    assert last.finish_reason == common_pb2.FINISH_REASON_LENGTH
    assert last.usage.completion_tokens == 12 == sum(r.num_tokens for r in responses)
    assert last.usage.prompt_tokens == len(prompt_ids)
    assert last.usage.system_tokens == num_system
    assert "".join(r.text for r in responses).strip()
    assert all(not r.HasField("usage") for r in responses[:-1])


async def test_cancel_mid_stream_frees_the_slot(channel: grpc.aio.Channel) -> None:
    stub = worker_pb2_grpc.WorkerStub(channel)
    call = stub.Generate(_chat(200, ignore_eos=True))
    for _ in range(3):
        await call.read()
    load = await stub.GetLoad(worker_pb2.LoadRequest())
    assert load.num_running == 1
    call.cancel()
    for _ in range(100):
        load = await stub.GetLoad(worker_pb2.LoadRequest())
        if load.num_running == 0:
            break
        await asyncio.sleep(0.02)
    assert load.num_running == 0
    assert load.num_cancelled_total == 1
    assert load.num_requests_total == 1
    assert load.num_generated_tokens_total >= 3


async def test_context_overflow_is_invalid_argument(channel: grpc.aio.Channel) -> None:
    stub = worker_pb2_grpc.WorkerStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.Generate(_chat(1000)):
            pass
    error = info.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "maximum context length is 256 tokens" in error.details()
    metadata = dict(error.trailing_metadata())
    assert metadata[ERROR_CODE_KEY] == "context_length_exceeded"
    assert metadata[ERROR_PARAM_KEY] == "max_tokens"


async def test_count_tokens_matches_generate_and_creates_no_sequence(
    channel: grpc.aio.Channel,
) -> None:
    stub = worker_pb2_grpc.WorkerStub(channel)
    raw = worker_pb2.GenerateRequest(
        model="smollm2:135m",
        prompt="Once upon a time, a dragon",
        sampling=common_pb2.SamplingParams(max_tokens=4),
    )
    counted = [await stub.CountTokens(request) for request in (_chat(4), raw)]
    load = await stub.GetLoad(worker_pb2.LoadRequest())
    assert (load.num_requests_total, load.num_running, load.num_generated_tokens_total) == (0, 0, 0)
    for request, count in zip((_chat(4), raw), counted, strict=True):
        last = [r async for r in stub.Generate(request)][-1]
        assert count.prompt_tokens == last.usage.prompt_tokens > 0
        assert count.system_tokens == last.usage.system_tokens
        assert count.context_length == 256
    assert counted[0].system_tokens > 0 and counted[1].system_tokens == 0
    # A prompt over the window is counted, not refused: the caller decides (one whose bytes
    # alone prove it cannot fit is refused: test_a_prompt_that_cannot_fit_is_never_tokenised).
    long = worker_pb2.GenerateRequest(
        model="smollm2:135m",
        chat=worker_pb2.ChatPrompt(
            messages=[common_pb2.ChatMessage(role="user", content="word " * 300)]
        ),
    )
    assert (await stub.CountTokens(long)).prompt_tokens > 256
    load = await stub.GetLoad(worker_pb2.LoadRequest())
    assert load.num_requests_total == 2  # the two Generate calls only
    wrong = _chat(4)
    wrong.model = "llama:70b"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CountTokens(wrong)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


async def test_bad_sampling_params_name_the_param(channel: grpc.aio.Channel) -> None:
    stub = worker_pb2_grpc.WorkerStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.Generate(_chat(5, temperature=3.0)):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    metadata = dict(info.value.trailing_metadata())
    assert (metadata[ERROR_CODE_KEY], metadata[ERROR_PARAM_KEY]) == (
        "invalid_request_error",
        "temperature",
    )


async def test_wrong_model_is_not_found(channel: grpc.aio.Channel) -> None:
    stub = worker_pb2_grpc.WorkerStub(channel)
    request = _chat(5)
    request.model = "llama:70b"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.Generate(request):
            pass
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "smollm2:135m" in info.value.details()


async def test_info_health_and_embed(channel: grpc.aio.Channel) -> None:
    stub = worker_pb2_grpc.WorkerStub(channel)
    info = await stub.Info(worker_pb2.InfoRequest())
    assert (info.worker_id, info.models[0].id, info.max_num_seqs) == ("w-test", "smollm2:135m", 2)
    health = health_pb2_grpc.HealthStub(channel)
    status = await health.Check(health_pb2.HealthCheckRequest(service="llmaas.v1.Worker"))
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Embed(worker_pb2.EmbedRequest(inputs=["x"]))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_watch_load_pushes_changes(channel: grpc.aio.Channel) -> None:
    stub = worker_pb2_grpc.WorkerStub(channel)
    watch = stub.WatchLoad(worker_pb2.LoadRequest(interval_ms=50))
    first = await watch.read()
    assert first.num_running == 0 and first.max_num_seqs == 2
    async for _ in stub.Generate(_chat(2)):
        pass
    later = await asyncio.wait_for(watch.read(), timeout=5)
    assert later.num_requests_total >= 1 or later.num_running >= 1
    watch.cancel()


async def test_draining_refuses_new_sequences(
    server: WorkerServer, channel: grpc.aio.Channel
) -> None:
    stub = worker_pb2_grpc.WorkerStub(channel)
    running = stub.Generate(_chat(30, ignore_eos=True))
    await running.read()
    drain = asyncio.create_task(server.drain_and_stop(timeout_s=30))
    await asyncio.sleep(0.05)
    health = health_pb2_grpc.HealthStub(channel)
    status = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert status.status == health_pb2.HealthCheckResponse.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.Generate(_chat(5)):
            pass
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    rest = []
    while (response := await running.read()) != grpc.aio.EOF:
        rest.append(response)
    assert rest[-1].finish_reason == common_pb2.FINISH_REASON_LENGTH  # the running one finished
    await drain


async def test_the_issue_prompt_is_refused_untokenised_over_grpc(
    channel: grpc.aio.Channel, smollm2: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    # issue #14 point 1: the 589 KB prompt, as Generate and as CountTokens
    tok = smollm2.tokenizer
    monkeypatch.setattr(tok, "_encode_texts", lambda texts: pytest.fail("tokenised"))
    content = "Add up the following numbers: " + " ".join(map(str, range(100000)))
    request = _chat(1)
    request.chat.messages[0].content = content
    stub = worker_pb2_grpc.WorkerStub(channel)
    for call in (stub.CountTokens, stub.Generate):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            response = call(request)
            if call is stub.Generate:
                async for _ in response:
                    pass
            else:
                await response
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(info.value.trailing_metadata())[ERROR_CODE_KEY] == "context_length_exceeded"
        assert "maximum context length is 256 tokens" in info.value.details()
