"""End to end on a 2-worker mesh (real processes, real model): prefix affinity, cancellation
within a decode step, kill -9 failover and recovery, and a SIGTERM drain that no request races.

Kept lean for a 2-core machine: one module-scoped mesh, few requests, small max_tokens,
every wait bounded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import grpc
import httpx
import pytest

from mesh.pb import common_pb2, inference_pb2, inference_pb2_grpc, worker_pb2, worker_pb2_grpc
from tools.run_mesh import MeshHandle, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

MODEL = "smollm2:135m"
# ~500 tokens of shared system prompt (same conversation set-up for every request).
SYSTEM = " ".join(
    f"Policy {i}: answer in one short sentence, cite no sources, stay polite and factual."
    for i in range(30)
)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> MeshHandle:
    env = dict(os.environ)
    env.update(
        {
            "LLMAAS_WORKER_NUM_THREADS": "1",  # two workers share two cores
            "LLMAAS_METRICS_PORT": "off",
        }
    )
    handle = start_mesh(
        env,
        workers=2,
        embeddings=False,
        run_dir=tmp_path_factory.mktemp("mesh"),
        ready_timeout_s=300,
    )
    yield handle
    handle.stop()


def loads(mesh: MeshHandle) -> list[worker_pb2.LoadReport]:
    out = []
    for address in mesh.worker_addresses:
        with grpc.insecure_channel(address) as channel:
            try:
                out.append(
                    worker_pb2_grpc.WorkerStub(channel).GetLoad(worker_pb2.LoadRequest(), timeout=5)
                )
            except grpc.RpcError:
                out.append(worker_pb2.LoadReport())  # down
    return out


def ask(
    mesh: MeshHandle, content: str, max_tokens: int = 4, system: str | None = None
) -> httpx.Response:
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": content}
    ]
    return httpx.post(
        f"{mesh.url}/v1/chat/completions",
        timeout=60,
        headers={"Authorization": f"Bearer {mesh.api_key}"},
        json={"model": MODEL, "messages": messages, "max_tokens": max_tokens, "temperature": 0},
    )


def test_shared_prefix_lands_on_one_worker_and_hits_its_prefix_cache(mesh):
    before = loads(mesh)
    for i in range(20):
        reply = ask(mesh, f"Question {i}: what is {i} plus one?", system=SYSTEM)
        assert reply.status_code == 200, reply.text
        assert reply.json()["usage"]["prompt_tokens"] > 500
    after = loads(mesh)
    requests = [
        a.num_requests_total - b.num_requests_total for a, b in zip(after, before, strict=True)
    ]
    hits = [
        a.num_prefix_cache_hits_total - b.num_prefix_cache_hits_total
        for a, b in zip(after, before, strict=True)
    ]
    print(f"affinity: requests per worker {requests}, prefix-cache hits per worker {hits}")
    assert sorted(requests) == [0, 20]
    assert max(hits) >= 19 and min(hits) == 0  # every request after the first reused the prefix


async def test_a_client_gone_after_3_tokens_frees_the_worker_sequence_within_a_step(mesh):
    before = loads(mesh)
    async with grpc.aio.insecure_channel(mesh.router_address) as channel:
        stub = inference_pb2_grpc.InferenceStub(channel)
        request = inference_pb2.ChatCompletionRequest(
            model=MODEL,
            messages=[common_pb2.ChatMessage(role="user", content="Tell me a very long story.")],
            sampling=common_pb2.SamplingParams(temperature=0, max_tokens=1000, ignore_eos=True),
        )
        call = stub.ChatCompletion(request, metadata=[("authorization", f"Bearer {mesh.api_key}")])
        seen = 0
        while seen < 3:
            chunk = await asyncio.wait_for(call.read(), 60)
            seen += chunk.text != ""
        call.cancel()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        now = loads(mesh)
        if (
            sum(n.num_cancelled_total for n in now)
            == sum(b.num_cancelled_total for b in before) + 1
        ):
            break
        await asyncio.sleep(0.1)
    generated = sum(n.num_generated_tokens_total for n in now)
    await asyncio.sleep(1.0)
    later = loads(mesh)
    produced = generated - sum(b.num_generated_tokens_total for b in before)
    print(f"cancel: {produced} tokens generated for a 1000-token request cancelled after 3")
    assert (
        sum(n.num_cancelled_total for n in later) == sum(b.num_cancelled_total for b in before) + 1
    )
    assert sum(n.num_generated_tokens_total for n in later) == generated  # stopped growing
    assert produced < 50
    assert all(n.num_running == 0 for n in later)


async def _stream(client: httpx.AsyncClient, prompt: str, max_tokens: int) -> dict:
    """One streamed request: HTTP status, content chunks before the end, and how it ended."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    out = {"status": 0, "tokens": 0, "end": "none"}
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        out["status"] = r.status_code
        if r.status_code != 200:
            await r.aread()
            out["end"] = "http_error"
            return out
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                out["end"] = "done"
                break
            event = json.loads(line[6:])
            if "error" in event:
                out["end"] = "error_event"
                break
            if event["choices"] and event["choices"][0]["delta"].get("content"):
                out["tokens"] += 1
    return out


async def _load(
    mesh: MeshHandle, n: int, gap_s: float, max_tokens: int, action, at_s: float
) -> list[dict]:
    async with httpx.AsyncClient(
        base_url=mesh.url,
        timeout=httpx.Timeout(90),
        headers={"Authorization": f"Bearer {mesh.api_key}"},
    ) as client:

        async def one(i: int) -> dict:
            await asyncio.sleep(i * gap_s)
            prompt = f"Story {i}: write a long tale about a dragon named {i}."
            return await asyncio.wait_for(_stream(client, prompt, max_tokens), 120)

        async def act() -> None:
            await asyncio.sleep(at_s)
            action()

        results = await asyncio.gather(*(one(i) for i in range(n)), act())
    return list(results[:n])


def _served_by(mesh: MeshHandle, index: int) -> int:
    return loads(mesh)[index].num_requests_total


async def test_kill_9_fails_over_before_the_first_token_and_the_restarted_worker_returns(mesh):
    victim = mesh.processes["worker-1"]
    results = await _load(
        mesh,
        n=12,
        gap_s=0.3,
        max_tokens=32,
        action=lambda: victim.send_signal(signal.SIGKILL),
        at_s=2.0,
    )
    summary = [(r["status"], r["tokens"], r["end"]) for r in results]
    print(f"kill -9 under load: {summary}")
    assert victim.poll() is not None
    for r in results:
        assert r["status"] == 200, summary  # nothing failed before streaming started
        assert r["end"] in ("done", "error_event"), summary  # nothing hung or ended silently
        if r["end"] == "error_event":
            assert r["tokens"] >= 1, summary  # an error only for streams that had begun
    # the survivor serves new requests at once
    started = time.monotonic()
    reply = await asyncio.to_thread(ask, mesh, "Hello after the crash")
    assert reply.status_code == 200 and time.monotonic() - started < 5
    # restart on the same port with the same command: back in rotation once healthy
    mesh.restart("worker-1")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and _served_by(mesh, 0) == 0:
        replies = await asyncio.gather(
            *(asyncio.to_thread(ask, mesh, f"Ping {i} {time.monotonic()}") for i in range(2))
        )
        assert all(r.status_code == 200 for r in replies)
        await asyncio.sleep(0.5)
    print(f"restarted worker-1 served {_served_by(mesh, 0)} request(s)")
    assert _served_by(mesh, 0) > 0


async def test_sigterm_drain_never_fails_a_request(mesh):
    victim = mesh.processes["worker-2"]
    results = await _load(
        mesh,
        n=8,
        gap_s=0.3,
        max_tokens=16,
        action=lambda: victim.send_signal(signal.SIGTERM),
        at_s=1.0,
    )
    summary = [(r["status"], r["tokens"], r["end"]) for r in results]
    print(f"SIGTERM drain under load: {summary}")
    assert all(r["status"] == 200 and r["end"] == "done" for r in results), summary
    assert victim.wait(30) == 0
    mesh.restart("worker-2")  # leave the mesh whole
