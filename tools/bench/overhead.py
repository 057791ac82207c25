"""Mesh overhead: edge + router + filter cost, against calling the worker's `Generate` directly.

Starts a plain (no TLS) mesh with one worker and sends the same kind of request both ways:
straight to the worker over gRPC, and through the HTTP edge (streaming, include_usage).
Each request has its own random prefix (no prefix-cache hits on either path) and the two
paths alternate request by request, so drift on a shared machine hits both alike.
  c=1:  TTFT p50 (goal: the edge adds <= 2 ms) and per-request tok/s (goal: <= 5 % lower)
  c=16: aggregate tok/s of 16 concurrent requests each way (goal: <= 5 % lower)
Prints the figures and the added cost per request and per token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from dataclasses import dataclass

import grpc
import httpx

from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from tools.bench.load import SEED, level_prompts, one_request
from tools.launcher.children import DEFAULT_MODEL, served_model_id
from tools.launcher.start import start_mesh


@dataclass(slots=True)
class Timing:
    ttft_s: float
    total_s: float
    tokens: int
    error: str = ""

    @property
    def tok_s(self) -> float:
        return self.tokens / self.total_s if self.total_s else 0.0


async def direct(
    stub: worker_pb2_grpc.WorkerStub, model: str, prompt: str, max_tokens: int
) -> Timing:
    request = worker_pb2.GenerateRequest(
        request_id=f"bench-{uuid.uuid4().hex[:12]}",
        model=model,
        tenant="bench-overhead",
        chat=worker_pb2.ChatPrompt(messages=[common_pb2.ChatMessage(role="user", content=prompt)]),
        sampling=common_pb2.SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=True),
    )
    start = time.perf_counter()
    ttft, tokens = None, 0
    try:
        async for msg in stub.Generate(request):
            if ttft is None and msg.text:
                ttft = time.perf_counter() - start
            tokens = msg.usage.completion_tokens if msg.HasField("usage") else tokens
    except grpc.aio.AioRpcError as exc:
        return Timing(
            time.perf_counter() - start,
            time.perf_counter() - start,
            0,
            f"{exc.code()}: {exc.details()}",
        )
    total = time.perf_counter() - start
    return Timing(total if ttft is None else ttft, total, tokens)


async def via_edge(client: httpx.AsyncClient, model: str, prompt: str, max_tokens: int) -> Timing:
    start = time.perf_counter()
    s = await one_request(client, model, prompt, max_tokens, {"ignore_eos": True})
    return Timing(s.ttft_s, time.perf_counter() - start, s.output_tokens, s.error)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _line(label: str, d: float, e: float, unit: str, digits: int = 1) -> str:
    return f"  {label:<30} direct {d:>9.{digits}f} {unit:<5} edge {e:>9.{digits}f} {unit:<5}"


async def measure(
    url: str, api_key: str, worker: str, model: str, n: int, burst: int, max_tokens: int, seed: int
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=64)
    async with (
        httpx.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as client,
        grpc.aio.insecure_channel(worker) as channel,
    ):
        stub = worker_pb2_grpc.WorkerStub(channel)
        worker_model = served_model_id(model)
        for _ in range(2):  # warm-up: connections, filter, the worker's first steps
            await direct(stub, worker_model, "warm up", 4)
            await via_edge(client, model, "warm up", 4)
        d_prompts, e_prompts = level_prompts(1, n, seed), level_prompts(1, n, seed + 1)
        d1, e1 = [], []
        for i in range(n):  # alternate, and swap who goes first every other pair
            pair = [("d", d_prompts[i]), ("e", e_prompts[i])]
            for path, prompt in pair if i % 2 == 0 else pair[::-1]:
                if path == "d":
                    d1.append(await direct(stub, worker_model, prompt, max_tokens))
                else:
                    e1.append(await via_edge(client, model, prompt, max_tokens))
        out: dict[str, float] = {}
        if burst:
            for path in ("d", "e") if seed % 2 == 0 else ("e", "d"):
                prompts = level_prompts(burst, burst, seed + (2 if path == "d" else 3))
                start = time.perf_counter()
                if path == "d":
                    res = await asyncio.gather(
                        *(direct(stub, worker_model, p, max_tokens) for p in prompts)
                    )
                else:
                    res = await asyncio.gather(
                        *(via_edge(client, model, p, max_tokens) for p in prompts)
                    )
                wall = time.perf_counter() - start
                out[f"{path}_burst_tok_s"] = sum(t.tokens for t in res) / wall
                out[f"{path}_burst_errors"] = sum(1 for t in res if t.error)
    errors = [t.error for t in d1 + e1 if t.error]
    if errors:
        print(f"  {len(errors)} failed request(s), first: {errors[0]}")
    ok_d, ok_e = [t for t in d1 if not t.error], [t for t in e1 if not t.error]
    out.update(
        {
            "n": n,
            "d_ttft_p50_ms": _median([t.ttft_s * 1000 for t in ok_d]),
            "e_ttft_p50_ms": _median([t.ttft_s * 1000 for t in ok_e]),
            "d_tok_s_p50": _median([t.tok_s for t in ok_d]),
            "e_tok_s_p50": _median([t.tok_s for t in ok_e]),
            "d_total_p50_ms": _median([t.total_s * 1000 for t in ok_d]),
            "e_total_p50_ms": _median([t.total_s * 1000 for t in ok_e]),
            "d_tokens": _median([t.tokens for t in ok_d]),
            "e_tokens": _median([t.tokens for t in ok_e]),
        }
    )
    return out


def report(r: dict[str, float], burst: int) -> None:
    added_ttft = r["e_ttft_p50_ms"] - r["d_ttft_p50_ms"]
    loss = 1 - r["e_tok_s_p50"] / r["d_tok_s_p50"] if r["d_tok_s_p50"] else float("nan")
    tokens = max(r["e_tokens"], 1)
    per_token = (r["e_total_p50_ms"] - r["d_total_p50_ms"] - added_ttft) / tokens
    print(
        f"== mesh overhead: edge + router + filter vs the worker's Generate (c=1: {r['n']:.0f} requests "
        f"each way, alternating; {r['e_tokens']:.0f} tokens each) =="
    )
    print(_line("TTFT p50", r["d_ttft_p50_ms"], r["e_ttft_p50_ms"], "ms"))
    print(_line("request wall p50", r["d_total_p50_ms"], r["e_total_p50_ms"], "ms"))
    print(_line("per-request tok/s p50", r["d_tok_s_p50"], r["e_tok_s_p50"], "tok/s"))
    if burst and "d_burst_tok_s" in r:
        print(_line(f"aggregate tok/s, c={burst}", r["d_burst_tok_s"], r["e_burst_tok_s"], "tok/s"))
    print(
        f"  added TTFT p50: {added_ttft:+.1f} ms (goal <= 2 ms): {'met' if added_ttft <= 2 else 'NOT met'}"
    )
    print(
        f"  c=1 throughput loss: {loss * 100:+.1f} % (goal <= 5 %): {'met' if loss <= 0.05 else 'NOT met'}"
    )
    print(f"  added per token after the first: {per_token:+.2f} ms")
    if burst and "d_burst_tok_s" in r:
        bl = 1 - r["e_burst_tok_s"] / r["d_burst_tok_s"]
        print(
            f"  c={burst} throughput loss: {bl * 100:+.1f} % (goal <= 5 %): {'met' if bl <= 0.05 else 'NOT met'}"
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m tools.bench.overhead", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--requests", type=int, default=16, help="c=1 requests each way")
    p.add_argument(
        "--burst",
        type=int,
        default=16,
        help="concurrent requests each way for aggregate tok/s (0: skip)",
    )
    p.add_argument("--quick", action="store_true", help="6 requests each way, burst of 8")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--seed", type=int, default=SEED + 100)
    args = p.parse_args(argv)
    if args.quick:
        args.requests, args.burst = 6, 8
    env = {k: v for k, v in os.environ.items() if k != "LLMAAS_TLS"}  # the direct channel is plain
    print("starting a mesh (1 worker, plain gRPC) ...", flush=True)
    with start_mesh(env, workers=1, model=args.model, embeddings=False) as mesh:
        result = asyncio.run(
            measure(
                mesh.url,
                mesh.api_key,
                mesh.worker_addresses[0],
                args.model,
                args.requests,
                args.burst,
                args.max_tokens,
                args.seed,
            )
        )
    report(result, args.burst)


if __name__ == "__main__":
    main()
