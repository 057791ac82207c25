"""`make bench`: streaming chat load through the HTTP edge at concurrency 1, 4 and 16.

Each level sends a fixed number of requests (8/16/32), temperature 0, max_tokens 64, with
a ~100-token prompt whose random prefix differs per level (so the prefix cache of one level
does not flatter the next). Token counts come from `stream_options.include_usage`.
Prints TTFT p50/p95, inter-token p50/p95 (gap between content chunks) and aggregate
output tokens per second. Starts its own mesh via `start_mesh` unless `--url` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import time
from dataclasses import dataclass, field

import httpx

from tools.run_mesh import DEFAULT_MODEL, start_mesh

LEVELS = ((1, 8), (4, 16), (16, 32))  # (concurrency, requests)
BODY_TEXT = (
    "You are reviewing a short report about renewable energy in a mid-sized European city. "
    "The report covers solar panels on public buildings, a new wind farm twenty kilometres "
    "north, district heating fed by waste incineration, and a plan to electrify the bus fleet "
    "by 2030. Summarise the main points in plain language for a citizen newsletter, and list "
    "two questions the council should answer next."
)


@dataclass(slots=True)
class Sample:
    ttft_s: float
    gaps_s: list[float] = field(default_factory=list)
    output_tokens: int = 0


async def one_request(client: httpx.AsyncClient, model: str, prompt: str, max_tokens: int) -> Sample:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0, "stream": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    sample, last = None, start
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            now = time.perf_counter()
            if event.get("choices") and event["choices"][0]["delta"].get("content"):
                if sample is None:
                    sample = Sample(ttft_s=now - start)
                else:
                    sample.gaps_s.append(now - last)
                last = now
            if event.get("usage") and sample is not None:
                sample.output_tokens = event["usage"]["completion_tokens"]
    return sample or Sample(ttft_s=time.perf_counter() - start)


async def run_level(client: httpx.AsyncClient, model: str, concurrency: int, num_requests: int,
                    max_tokens: int) -> tuple[list[Sample], float]:
    prefix = f"[session {secrets.token_hex(4)}] "
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(num_requests):
        queue.put_nowait(i)
    samples: list[Sample] = []

    async def user() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            samples.append(await one_request(client, model, f"{prefix}(request {i}) {BODY_TEXT}", max_tokens))

    start = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    return samples, time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def report_line(concurrency: int, samples: list[Sample], wall_s: float) -> str:
    ttft = [s.ttft_s * 1000 for s in samples]
    gaps = [g * 1000 for s in samples for g in s.gaps_s]
    tokens = sum(s.output_tokens for s in samples)
    return (f"{concurrency:>11} {len(samples):>8} {pct(ttft, 50):>9.0f} {pct(ttft, 95):>9.0f} "
            f"{pct(gaps, 50):>9.1f} {pct(gaps, 95):>9.1f} {tokens:>8} {tokens / wall_s:>9.1f}")


async def bench(url: str, api_key: str, model: str, max_tokens: int) -> None:
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as client:
        await one_request(client, model, "warm up", 4)
        print(f"model {model}, max_tokens {max_tokens}, {url}")
        print("concurrency requests  ttft p50  ttft p95  itl p50   itl p95  out tok  tok/s")
        print("                          (ms)      (ms)      (ms)      (ms)")
        for concurrency, num_requests in LEVELS:
            samples, wall_s = await run_level(client, model, concurrency, num_requests, max_tokens)
            print(report_line(concurrency, samples, wall_s), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an already running edge, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=os.environ.get("LLMAAS_DEV_KEY", ""))
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("LLMAAS_WORKERS", "1")))
    args = parser.parse_args(argv)
    if args.url:
        asyncio.run(bench(args.url.rstrip("/"), args.api_key, args.model, args.max_tokens))
        return
    print(f"starting a mesh with {args.workers} worker(s) ...", flush=True)
    with start_mesh(workers=args.workers, model=args.model) as mesh:
        asyncio.run(bench(mesh.url, mesh.api_key, args.model, args.max_tokens))


if __name__ == "__main__":
    main()
