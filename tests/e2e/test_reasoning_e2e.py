"""End to end: a thinking model's reasoning tokens, reported apart and billed at 21 €/M.

Real filter, worker, router and edge processes. The worker serves a tiny random-weight Llama
built here, whose tokenizer has `<think>`/`</think>` and whose chat template opens `<think>`
after the assistant header (DeepSeek-R1 style): with a small max_tokens the generation ends
inside the think block, so every generated token is reasoning. An operator catalog maps the
catalog id `think:tiny` to that directory (weights column), with its own energy figure.
"""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal

import grpc
import httpx
import openai
import pytest

from mesh.catalog import DEFAULT_PATH
from mesh.pb import common_pb2, inference_pb2, inference_pb2_grpc
from mesh.pricing import DEFAULT_PRICES, cost_from_usage, to_cents
from tools.dev.make_tiny_model import make_tiny_model
from tools.run_mesh import MeshHandle, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = "think:tiny"
KWH_PER_MTOK = Decimal("1.5")
MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]
MAX_TOKENS = 6
MILLION = Decimal(1_000_000)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> MeshHandle:
    root = tmp_path_factory.mktemp("reasoning")
    model_dir = make_tiny_model(root / "tiny-think", seed=0, thinking=True)
    catalog = root / "models.csv"
    catalog.write_text(
        DEFAULT_PATH.read_text().rstrip("\n")
        + f"\n{MODEL},llmaas tests,production,2025-01-01,,2048,{KWH_PER_MTOK},,,,{model_dir},chat,\n"
    )
    # Plain mode, whatever the caller's environment: the gRPC check below dials in clear.
    env = {**os.environ, "LLMAAS_CATALOG": str(catalog), "LLMAAS_TLS": "0"}
    handle = start_mesh(
        env,
        workers=1,
        model=str(model_dir),
        embeddings=False,
        run_dir=root / "run",
        ready_timeout_s=240,
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def client(mesh) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{mesh.url}/v1", api_key=mesh.api_key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def answer(client):
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=0
    )
    return raw.parse(), raw.headers


def expected_cost(usage) -> Decimal:
    return cost_from_usage(
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.completion_tokens_details.reasoning_tokens,
    )


def test_reasoning_is_reported_apart_from_the_answer(answer):
    reply, _ = answer
    usage, choice = reply.usage, reply.choices[0]
    assert reply.model == MODEL
    assert choice.finish_reason == "length" and usage.completion_tokens == MAX_TOKENS
    # The generation never left <think>: all of it is reasoning, none is answer.
    assert usage.completion_tokens_details.reasoning_tokens == MAX_TOKENS
    assert choice.message.content == ""
    assert (
        choice.message.reasoning_content
        and choice.message.reasoning == choice.message.reasoning_content
    )


def test_cost_bills_reasoning_at_21_eur_per_million(answer):
    reply, headers = answer
    usage = reply.usage
    reasoning = usage.completion_tokens_details.reasoning_tokens
    cost = Decimal(headers["x-llmaas-cost-eur"])
    # The exact figure: input × 0.9 + (completion − reasoning) × 4 + reasoning × 21, per million.
    expected = (
        usage.prompt_tokens * Decimal("0.9")
        + (usage.completion_tokens - reasoning) * 4
        + reasoning * 21
    ) / MILLION
    assert DEFAULT_PRICES.reasoning == 21
    assert cost == expected == expected_cost(usage)
    # To the cent, per million such requests (one request is a fraction of a cent).
    assert to_cents(cost * MILLION) == to_cents(expected * MILLION)
    assert cost * MILLION == usage.prompt_tokens * Decimal("0.9") + MAX_TOKENS * 21
    assert cost != (usage.prompt_tokens * Decimal("0.9") + usage.completion_tokens * 4) / MILLION
    assert Decimal(headers["x-llmaas-energy-kwh"]) == usage.total_tokens * KWH_PER_MTOK / MILLION


def test_streaming_sends_reasoning_deltas_and_cost_in_the_usage_chunk(mesh, answer):
    reply, headers = answer
    body = {
        "model": MODEL,
        "messages": MESSAGES,
        "max_tokens": MAX_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    r = httpx.post(
        f"{mesh.url}/v1/chat/completions",
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {mesh.api_key}"},
    )
    assert r.status_code == 200
    events = [
        json.loads(line.removeprefix("data: "))
        for line in r.text.split("\n\n")
        if line.startswith("data: {")
    ]
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    assert (
        "".join(d.get("reasoning_content", "") for d in deltas)
        == reply.choices[0].message.reasoning_content
    )
    assert (
        "".join(d.get("reasoning", "") for d in deltas)
        == reply.choices[0].message.reasoning_content
    )
    assert "".join(d.get("content") or "" for d in deltas) == ""
    usage = events[-1]["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == MAX_TOKENS
    assert (usage["cost_eur"], usage["energy_kwh"]) == (
        headers["x-llmaas-cost-eur"],
        headers["x-llmaas-energy-kwh"],
    )


def test_sdk_stream_exposes_reasoning_content(client, answer):
    reply, _ = answer
    stream = client.chat.completions.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    thoughts, usage = [], None
    for chunk in stream:
        if chunk.choices and getattr(chunk.choices[0].delta, "reasoning_content", None):
            thoughts.append(chunk.choices[0].delta.reasoning_content)
        usage = chunk.usage or usage
    assert "".join(thoughts) == reply.choices[0].message.reasoning_content
    assert usage.completion_tokens_details.reasoning_tokens == MAX_TOKENS
    assert Decimal(usage.model_extra["cost_eur"]) == expected_cost(usage)


def test_grpc_chunks_carry_reasoning_text_usage_and_cost(mesh, answer):
    reply, headers = answer

    async def run() -> list[inference_pb2.CompletionChunk]:
        async with grpc.aio.insecure_channel(mesh.router_address) as channel:
            call = inference_pb2_grpc.InferenceStub(channel).ChatCompletion(
                inference_pb2.ChatCompletionRequest(
                    model=MODEL,
                    messages=[common_pb2.ChatMessage(**m) for m in MESSAGES],
                    sampling=common_pb2.SamplingParams(temperature=0, max_tokens=MAX_TOKENS),
                ),
                metadata=[("authorization", f"Bearer {mesh.api_key}")],
            )
            return [chunk async for chunk in call]

    chunks = asyncio.run(run())
    last = chunks[-1]
    assert "".join(c.reasoning_text for c in chunks) == reply.choices[0].message.reasoning_content
    assert "".join(c.text for c in chunks) == ""
    assert last.usage.reasoning_tokens == MAX_TOKENS == last.usage.completion_tokens
    assert (last.cost.cost_eur, last.cost.energy_kwh) == (
        headers["x-llmaas-cost-eur"],
        headers["x-llmaas-energy-kwh"],
    )
