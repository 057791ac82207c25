"""Memory soak (`make bench-soak`): the worker's RSS under concurrency 64 for N minutes.

Starts a mesh with one worker (or uses `--url` with `--worker-pid`), keeps 64 streaming
requests in flight through the edge (64 tokens each, ignore_eos, a fresh random prefix per
request so the prefix cache keeps turning over), samples the worker process tree's VmRSS
every `--interval` seconds and prints the curve. Goal: peak < 2 GiB and flat (the last
third of the samples within 5 % / 64 MiB of the first third).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time

import httpx

from tools.bench.load import BODY_TEXT, one_request, tree_hwm_bytes, tree_rss_bytes
from tools.launcher.children import DEFAULT_MODEL
from tools.launcher.start import start_mesh

GIB = 2**30


async def soak(
    url: str,
    api_key: str,
    model: str,
    worker_pid: int,
    minutes: float,
    interval_s: float,
    concurrency: int,
    max_tokens: int,
) -> list[tuple[float, int, int, int]]:
    """Samples (elapsed s, RSS bytes, requests done, failed)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=concurrency + 8)
    rng = random.Random()
    done = failed = 0
    stop = asyncio.Event()
    samples: list[tuple[float, int, int, int]] = []

    async def user(client: httpx.AsyncClient) -> None:
        nonlocal done, failed
        while not stop.is_set():
            s = await one_request(
                client,
                model,
                f"[{rng.getrandbits(48):012x}] {BODY_TEXT}",
                max_tokens,
                {"ignore_eos": True},
            )
            done += 1
            failed += bool(s.error)

    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=600, limits=limits
    ) as client:
        users = [asyncio.create_task(user(client)) for _ in range(concurrency)]
        start = time.monotonic()
        rss = tree_rss_bytes([worker_pid])
        samples.append((0.0, rss, 0, 0))
        print(f"  {0:>6.0f} s  {rss / 2**20:>7.0f} MiB  {0:>6} requests", flush=True)
        while (elapsed := time.monotonic() - start) < minutes * 60:
            await asyncio.sleep(min(interval_s, minutes * 60 - elapsed))
            elapsed = time.monotonic() - start
            rss = tree_rss_bytes([worker_pid])
            samples.append((elapsed, rss, done, failed))
            print(
                f"  {elapsed:>6.0f} s  {rss / 2**20:>7.0f} MiB  {done:>6} requests"
                + (f"  ({failed} failed)" if failed else ""),
                flush=True,
            )
        stop.set()
        await asyncio.gather(*users, return_exceptions=True)
    return samples


def verdict(samples: list[tuple[float, int, int, int]], hwm: int) -> None:
    rss = [s[1] for s in samples[1:]] or [samples[0][1]]
    peak = max(max(rss), hwm)
    third = max(1, len(rss) // 3)
    first, last = statistics.median(rss[:third]), statistics.median(rss[-third:])
    growth = last - first
    flat = growth <= max(0.05 * first, 64 * 2**20)
    width = 50
    top = max(rss)
    print("\n  curve (worker RSS):")
    for t, r, _, _ in samples:
        print(
            f"  {t:>6.0f} s |{'#' * max(1, round(width * r / top)):<{width}}| {r / 2**20:.0f} MiB"
        )
    print(
        f"\n  peak {peak / 2**20:.0f} MiB (VmHWM {hwm / 2**20:.0f} MiB; goal < 2048): "
        f"{'met' if peak < 2 * GIB else 'NOT met'}"
    )
    print(
        f"  drift, median of last third vs first third: {growth / 2**20:+.0f} MiB "
        f"({growth / first * 100:+.1f} %; goal flat, <= 5 % or 64 MiB): {'met' if flat else 'NOT met'}"
    )
    if samples[-1][3]:
        print(f"  {samples[-1][3]} of {samples[-1][2]} requests failed")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m tools.bench.soak", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--url", help="a running edge (then --worker-pid is required)")
    p.add_argument("--worker-pid", type=int, help="the worker process to watch, with --url")
    p.add_argument("--api-key", default=os.environ.get("LLMAAS_DEV_KEY", ""))
    args = p.parse_args(argv)
    print(
        f"soak: concurrency {args.concurrency}, {args.max_tokens} tokens/request, {args.minutes:g} min, "
        f"worker RSS every {args.interval:g} s",
        flush=True,
    )
    if args.url:
        if not args.worker_pid:
            p.error("--url needs --worker-pid")
        samples = asyncio.run(
            soak(
                args.url.rstrip("/"),
                args.api_key,
                args.model,
                args.worker_pid,
                args.minutes,
                args.interval,
                args.concurrency,
                args.max_tokens,
            )
        )
        verdict(samples, tree_hwm_bytes([args.worker_pid]))
        return
    with start_mesh(workers=1, model=args.model, embeddings=False) as mesh:
        pid = mesh.processes["worker-1"].pid
        samples = asyncio.run(
            soak(
                mesh.url,
                mesh.api_key,
                args.model,
                pid,
                args.minutes,
                args.interval,
                args.concurrency,
                args.max_tokens,
            )
        )
        hwm = tree_hwm_bytes([pid])
    verdict(samples, hwm)


if __name__ == "__main__":
    main()
