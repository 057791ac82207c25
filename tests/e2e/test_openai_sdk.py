"""End to end: real filter, worker (SmolLM2-135M), router and edge processes, driven by the
official `openai` SDK, raw HTTP and the generated gRPC stubs."""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx
import openai
import pytest

from mesh.pb import common_pb2, inference_pb2, inference_pb2_grpc, worker_pb2, worker_pb2_grpc
from worker.loader import load_tokenizer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

MODEL = "smollm2:135m"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def greedy(client: openai.OpenAI, max_tokens: int = 16):
    return client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=max_tokens, temperature=0
    )


def test_sync_client_chat(client):
    reply = greedy(client)
    assert reply.object == "chat.completion" and reply.model == MODEL
    assert "Paris" in reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    usage = reply.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 1 <= usage.completion_tokens <= 16
    cut = greedy(client, max_tokens=3)  # stopped by max_tokens: exactly that many generated
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3


def test_prompt_tokens_are_the_templated_prompt(client):
    ids, _ = load_tokenizer(MODEL).render_chat(QUESTION)
    assert greedy(client, 4).usage.prompt_tokens == len(ids)


def test_async_client_eight_concurrent_requests(mesh):
    async def run() -> list:
        async with openai.AsyncOpenAI(
            base_url=f"{mesh.url}/v1", api_key=mesh.api_key, max_retries=0
        ) as aclient:
            return await asyncio.gather(
                *(
                    aclient.chat.completions.create(
                        model=MODEL,
                        max_tokens=12,
                        temperature=0,
                        messages=[{"role": "user", "content": f"Count from {i} to {i + 5}."}],
                    )
                    for i in range(8)
                )
            )

    replies = asyncio.run(run())
    assert len({r.id for r in replies}) == 8
    assert all(r.choices[0].message.content and r.usage.completion_tokens >= 1 for r in replies)


def test_streaming_with_usage_matches_the_non_streamed_answer(client):
    # Greedy text is the same for the same computation, not for any cache state: with int4
    # decode linears (native kernels on AVX-512 BF16 CPUs) a prompt computed partly from
    # another request's cached prefix can round a near-tie the other way. One request first,
    # so both compared requests reuse the same cached prompt and compute the same last token.
    greedy(client)
    stream = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    texts, usage = [], None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            texts.append(chunk.choices[0].delta.content)
        if chunk.usage is not None:
            usage = chunk.usage
    whole = greedy(client)
    assert "".join(texts) == whole.choices[0].message.content
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens
    # A chunk carries at least one token (several when a character spans tokens).
    assert len(texts) <= usage.completion_tokens <= 16


def test_grpc_stub_gets_the_same_greedy_answer(client, mesh):
    async def run() -> str:
        async with grpc.aio.insecure_channel(mesh.router_address) as channel:
            stub = inference_pb2_grpc.InferenceStub(channel)
            request = inference_pb2.ChatCompletionRequest(
                model=MODEL,
                messages=[common_pb2.ChatMessage(**m) for m in QUESTION],
                sampling=common_pb2.SamplingParams(temperature=0, max_tokens=16),
            )
            call = stub.ChatCompletion(
                request, metadata=(("authorization", f"Bearer {mesh.api_key}"),)
            )
            return "".join([chunk.text async for chunk in call])

    assert asyncio.run(run()) == greedy(client).choices[0].message.content


def test_bad_key_is_401(mesh):
    bad = openai.OpenAI(base_url=f"{mesh.url}/v1", api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=2)
    assert info.value.status_code == 401 and info.value.body["code"] == "invalid_api_key"


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope:1b", messages=QUESTION, max_tokens=2)
    assert info.value.body["code"] == "model_not_found" and info.value.body["param"] == "model"


def test_context_overflow_is_400_context_length_exceeded(client):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "word " * 5000}]
        )
    assert info.value.body["code"] == "context_length_exceeded"
    assert info.value.body["param"] == "messages"
    assert "maximum context length is" in info.value.body["message"]


@pytest.mark.parametrize(
    ("body", "param"), [(b"{not json", None), (b'{"model": "smollm2:135m"}', "messages")]
)
def test_bad_json_and_missing_messages_are_400(mesh, body, param):
    r = httpx.post(
        f"{mesh.url}/v1/chat/completions",
        content=body,
        timeout=30,
        headers={"Authorization": f"Bearer {mesh.api_key}", "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
    assert r.headers["x-request-id"]


def _cancelled_total(mesh) -> int:
    async def run() -> int:
        async with grpc.aio.insecure_channel(mesh.worker_addresses[0]) as channel:
            report = await worker_pb2_grpc.WorkerStub(channel).GetLoad(
                worker_pb2.LoadRequest(), timeout=5
            )
            return report.num_cancelled_total

    return asyncio.run(run())


def test_client_disconnect_mid_stream_cancels_the_worker_sequence(mesh):
    before = _cancelled_total(mesh)
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write a long story about a dragon."}],
        "max_tokens": 400,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {mesh.api_key}"}
    with httpx.stream(
        "POST", f"{mesh.url}/v1/chat/completions", json=body, headers=headers, timeout=60
    ) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        for _ in range(6):  # a few events, then hang up
            next(lines)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _cancelled_total(mesh) <= before:
        time.sleep(0.2)
    assert _cancelled_total(mesh) == before + 1
