"""Fairness benchmark: does a flooding tenant push another tenant's latency up?

Two tenants (created through the Admin API, same tier, so the same fair-queue weight):
B sends `--rate-b` requests/s; A sends `--flood`× that. Phase 1 measures B alone, phase 2
B while A floods. Each request: chat, temperature 0, `--max-tokens` tokens, non-streamed;
the latency is the whole request. Prints p50/p95 of B in both phases, the ratio, and what
happened to A (served, 503 with Retry-After from the fair queue). Exit code 1 when B's p95
under flood is above `--max-ratio` × its p95 alone.

By default it starts its own mesh (`start_mesh`, 1 worker with `--max-num-seqs` slots so
that A saturates it, fair-queue deadline `--queue-timeout-s`); `--url`, `--router` and
`--admin-key` point it at a running one instead.

    .venv/bin/python -m tools.bench.fairness            # ~2 minutes on a laptop CPU
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

import grpc
import httpx

from mesh.pb import admin_pb2, admin_pb2_grpc
from tools.launcher.children import DEFAULT_MODEL
from tools.launcher.start import start_mesh


@dataclass(slots=True)
class Outcomes:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, status: int, latency: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.latencies.append(latency)

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        if len(self.latencies) == 1:
            return self.latencies[0]
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]

    def line(self, name: str) -> str:
        return (
            f"{name:<22} n={sum(self.statuses.values()):<4} ok={len(self.latencies):<4} "
            f"p50={self.pct(50):6.2f}s p95={self.pct(95):6.2f}s statuses={dict(sorted(self.statuses.items()))}"
        )


async def _tenant_key(router: str, admin_key: str, name: str, tier: str) -> str:
    md = (("authorization", f"Bearer {admin_key}"),)
    async with grpc.aio.insecure_channel(router) as channel:
        admin = admin_pb2_grpc.AdminStub(channel)
        try:
            await admin.CreateTenant(
                admin_pb2.CreateTenantRequest(name=name, tier=tier), metadata=md
            )
        except grpc.aio.AioRpcError as err:  # a rerun on the same mesh: the tenant exists
            if err.code() not in (
                grpc.StatusCode.ALREADY_EXISTS,
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.FAILED_PRECONDITION,
            ):
                raise
        created = await admin.CreateKey(admin_pb2.CreateKeyRequest(tenant=name), metadata=md)
        return created.secret


async def _one(
    client: httpx.AsyncClient, key: str, model: str, max_tokens: int, i: int, out: Outcomes
) -> None:
    body = {
        "model": model,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": f"Request {i}: name three colours of the sea."}],
    }
    start = time.perf_counter()
    try:
        r = await client.post(
            "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
        status = r.status_code
    except httpx.HTTPError:
        status = 0
    out.add(status, time.perf_counter() - start)


async def _sender(
    client, key, model, max_tokens, rate: float, duration: float, out: Outcomes
) -> None:
    tasks, interval, t0 = [], 1.0 / rate, time.perf_counter()
    i = 0
    while (due := t0 + i * interval) < t0 + duration:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(_one(client, key, model, max_tokens, i, out)))
        i += 1
    await asyncio.gather(*tasks)


async def bench(url: str, router: str, admin_key: str, args: argparse.Namespace) -> int:
    suffix = secrets.token_hex(3)
    key_a = await _tenant_key(router, admin_key, f"flood-a-{suffix}", args.tier)
    key_b = await _tenant_key(router, admin_key, f"steady-b-{suffix}", args.tier)
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
    async with httpx.AsyncClient(
        base_url=url, timeout=httpx.Timeout(args.timeout_s), limits=limits
    ) as client:
        await _one(client, key_b, args.model, args.max_tokens, -1, Outcomes())  # warm-up
        alone = Outcomes()
        await _sender(
            client, key_b, args.model, args.max_tokens, args.rate_b, args.duration_s, alone
        )
        b, a = Outcomes(), Outcomes()
        await asyncio.gather(
            _sender(client, key_b, args.model, args.max_tokens, args.rate_b, args.duration_s, b),
            _sender(
                client,
                key_a,
                args.model,
                args.max_tokens,
                args.rate_b * args.flood,
                args.duration_s,
                a,
            ),
        )
    ratio = b.pct(95) / alone.pct(95)
    print(
        f"\nfairness: B at {args.rate_b}/s, A at {args.rate_b * args.flood:g}/s ({args.flood:g}x), "
        f"{args.duration_s:g}s per phase, max_tokens {args.max_tokens}, tier {args.tier} for both"
    )
    print(alone.line("B alone"))
    print(b.line("B while A floods"))
    print(a.line("A (flooding)"))
    verdict = "OK" if ratio <= args.max_ratio else "FAIL"
    print(f"B p95 under flood / alone = {ratio:.2f} (limit {args.max_ratio:g}): {verdict}")
    return 0 if ratio <= args.max_ratio else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tools.bench.fairness", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--url", help="edge of a running mesh (with --router and --admin-key)")
    p.add_argument("--router", help="router gRPC address of a running mesh")
    p.add_argument("--admin-key", default=os.environ.get("LLMAAS_ADMIN_KEY", ""))
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--tier", default="enterprise", help="tier of both tenants (same weight)")
    p.add_argument(
        "--rate-b", type=float, default=0.5, help="B's requests per second (below its fair share)"
    )
    p.add_argument("--flood", type=float, default=10.0, help="A's rate as a multiple of B's")
    p.add_argument("--duration-s", type=float, default=30.0)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--timeout-s", type=float, default=60.0)
    p.add_argument("--max-ratio", type=float, default=2.0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument(
        "--max-num-seqs", type=int, default=4, help="slots per worker of the mesh it starts"
    )
    p.add_argument("--queue-timeout-s", type=float, default=10.0)
    args = p.parse_args(argv)
    if args.url:
        if not (args.router and args.admin_key):
            p.error("--url needs --router and --admin-key (or LLMAAS_ADMIN_KEY)")
        return asyncio.run(bench(args.url, args.router, args.admin_key, args))
    admin_key = args.admin_key or f"sk-llmaas-admin-{secrets.token_urlsafe(24)}"
    env = dict(os.environ)
    env.update(
        {
            "LLMAAS_ADMIN_KEY": admin_key,
            "LLMAAS_WORKER_MAX_NUM_SEQS": str(args.max_num_seqs),
            "LLMAAS_WORKER_NUM_THREADS": env.get("LLMAAS_WORKER_NUM_THREADS", "1"),
            "LLMAAS_QUEUE_TIMEOUT_S": str(args.queue_timeout_s),
            "LLMAAS_METRICS_PORT": "off",
        }
    )
    print(
        f"starting a mesh: {args.workers} worker(s) x {args.max_num_seqs} slots, "
        f"queue deadline {args.queue_timeout_s:g}s ...",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="llmaas-fairness-") as run_dir,
        start_mesh(
            env, workers=args.workers, model=args.model, embeddings=False, run_dir=run_dir
        ) as mesh,
    ):
        return asyncio.run(bench(mesh.url, mesh.router_address, admin_key, args))


if __name__ == "__main__":
    sys.exit(main())
