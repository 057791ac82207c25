"""`make bench`: streaming chat load, the same for our mesh and for peer servers.

This module is the reusable load generator (any OpenAI-compatible `/v1/chat/completions`):
fixed prompt sets per concurrency level (seeded; a distinct random prefix per request, so
prefix caches do not flatter), temperature 0, `max_tokens` 64 with `ignore_eos` so every
server generates the same length, token counts from `stream_options.include_usage` (chunk
count when a server sends no usage), TTFT / inter-chunk gaps, aggregate output tok/s, and
the peak RSS of a server's process tree (sampled from /proc). `python -m tools.bench`
runs the side-by-side comparison of `tools.bench.compare` (ours vs llama.cpp's
llama-server vs transformers); see `python -m tools.bench --help`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

LEVELS = ((1, 8), (4, 16), (16, 32), (64, 64))  # (concurrency, requests)
QUICK_LEVELS = ((1, 3), (16, 16))
SEED = 20261126
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
    chunks: int = 0
    from_usage: bool = False  # output_tokens came from `usage` (else: content chunks counted)
    error: str = ""

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first: decode time / (tokens - 1)."""
        return sum(self.gaps_s) / (self.output_tokens - 1) if self.output_tokens > 1 else None


@dataclass(slots=True)
class LevelResult:
    concurrency: int
    samples: list[Sample]
    wall_s: float
    peak_rss_bytes: int | None = None
    peak_rss_by_root: dict[int, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        ok = [s for s in self.samples if not s.error]
        ttft = [s.ttft_s * 1000 for s in ok]
        gaps = [g * 1000 for s in ok for g in s.gaps_s]
        tpot = [s.tpot_s * 1000 for s in ok if s.tpot_s is not None]
        tokens = [s.output_tokens for s in ok]
        return {
            "concurrency": self.concurrency,
            "requests": len(self.samples),
            "errors": len(self.samples) - len(ok),
            "first_error": next((s.error for s in self.samples if s.error), ""),
            "ttft_p50_ms": pct(ttft, 50),
            "ttft_p95_ms": pct(ttft, 95),
            "itl_p50_ms": pct(gaps, 50),
            "itl_p95_ms": pct(gaps, 95),
            "tpot_p50_ms": pct(tpot, 50),
            "output_tokens": sum(tokens),
            "tokens_min": min(tokens, default=0),
            "tokens_max": max(tokens, default=0),
            "tokens_from_usage": bool(ok) and all(s.from_usage for s in ok),
            "wall_s": self.wall_s,
            "tok_s": sum(tokens) / self.wall_s if self.wall_s else 0.0,
            "peak_rss_mib": self.peak_rss_bytes / 2**20 if self.peak_rss_bytes else None,
        }


def level_prompts(concurrency: int, num_requests: int, seed: int = SEED) -> list[str]:
    """The fixed prompt set of one level: the same for every server, distinct per level and
    per request from the first token on (a random prefix), ~100 tokens each."""
    rng = random.Random(f"{seed}-{concurrency}-{num_requests}")
    return [f"[{rng.getrandbits(48):012x}] {BODY_TEXT}" for _ in range(num_requests)]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def one_request(
    client: httpx.AsyncClient,
    model: str,
    prompt: str,
    max_tokens: int,
    extra: dict[str, Any] | None = None,
) -> Sample:
    """One streamed chat completion; never raises for an HTTP or stream error (see `error`).

    A request that found its pooled keep-alive connection already closed by the server
    (nothing sent back) is sent once more on a new one: that is the client's race with the
    server's idle timeout, not a failed request (llama-server closes idle connections)."""
    sample = await _one_request(client, model, prompt, max_tokens, extra)
    if sample.error.startswith("RemoteProtocolError") and "without sending" in sample.error:
        sample = await _one_request(client, model, prompt, max_tokens, extra)
    return sample


async def _one_request(
    client: httpx.AsyncClient,
    model: str,
    prompt: str,
    max_tokens: int,
    extra: dict[str, Any] | None,
) -> Sample:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        **(extra or {}),
    }
    start = time.perf_counter()
    sample, last = None, start
    usage_tokens: int | None = None
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                text = (await r.aread()).decode(errors="replace")[:200]
                return Sample(
                    ttft_s=time.perf_counter() - start, error=f"HTTP {r.status_code}: {text}"
                )
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                now = time.perf_counter()
                choices = event.get("choices") or []
                if choices and (choices[0].get("delta") or {}).get("content"):
                    if sample is None:
                        sample = Sample(ttft_s=now - start)
                    else:
                        sample.gaps_s.append(now - last)
                    sample.chunks += 1
                    last = now
                if event.get("usage"):
                    usage_tokens = event["usage"].get("completion_tokens")
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        return Sample(ttft_s=time.perf_counter() - start, error=f"{type(exc).__name__}: {exc}")
    sample = sample or Sample(ttft_s=time.perf_counter() - start)
    if usage_tokens is not None:
        sample.output_tokens, sample.from_usage = usage_tokens, True
    else:
        sample.output_tokens = sample.chunks
    return sample


async def run_level(
    client: httpx.AsyncClient,
    model: str,
    prompts: list[str],
    concurrency: int,
    max_tokens: int,
    extra: dict[str, Any] | None = None,
    rss_pids: list[int] | None = None,
) -> LevelResult:
    """`concurrency` users working through `prompts`; samples the RSS of `rss_pids`' trees."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for prompt in prompts:
        queue.put_nowait(prompt)
    samples: list[Sample] = []

    async def user() -> None:
        while not queue.empty():
            samples.append(await one_request(client, model, queue.get_nowait(), max_tokens, extra))

    sampler = RssSampler(rss_pids) if rss_pids else None
    start = time.perf_counter()
    async with sampler or contextlib.nullcontext():
        await asyncio.gather(*(user() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    if sampler is None:
        return LevelResult(concurrency, samples, wall)
    return LevelResult(concurrency, samples, wall, sampler.peak, sampler.peak_by_root)


# -- memory of a process tree (/proc, no psutil) -----------------------------------------


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def process_tree(roots: list[int]) -> list[int]:
    """`roots` and all their live descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            ppid = int(text[text.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid not in out and Path(f"/proc/{pid}").exists():
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def tree_rss_bytes(roots: list[int]) -> int:
    """Current resident memory of the trees (sum of VmRSS)."""
    return sum(_status_kib(pid, "VmRSS") for pid in process_tree(roots)) * 1024


def tree_hwm_bytes(roots: list[int]) -> int:
    """Sum of each process's own peak (VmHWM): an upper bound of the tree's peak."""
    return sum(_status_kib(pid, "VmHWM") for pid in process_tree(roots)) * 1024


class RssSampler:
    """Async context: samples the trees' summed VmRSS every `interval_s`; `peak` in bytes
    (of the sum), `peak_by_root` (each root's own tree)."""

    def __init__(self, roots: list[int], interval_s: float = 0.25) -> None:
        self.roots, self.interval_s, self.peak = roots, interval_s, 0
        self.peak_by_root: dict[int, int] = dict.fromkeys(roots, 0)
        self._task: asyncio.Task | None = None

    def sample(self) -> int:
        per_root = {root: tree_rss_bytes([root]) for root in self.roots}
        for root, rss in per_root.items():
            self.peak_by_root[root] = max(self.peak_by_root[root], rss)
        total = sum(per_root.values())
        self.peak = max(self.peak, total)
        return total

    async def _loop(self) -> None:
        while True:
            await asyncio.to_thread(self.sample)
            await asyncio.sleep(self.interval_s)

    async def __aenter__(self) -> RssSampler:
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.sample()
