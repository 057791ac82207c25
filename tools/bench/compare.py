"""Side-by-side: the same streaming load against our mesh and the peers, one server at a time.

Servers (each started, measured and stopped before the next; never two loaded at once):
  ours          the mesh via `start_mesh` (or `--url` for a running one)
  llama         llama.cpp `llama-server -np 16` on the same Q4_1 GGUF (built by tools.bench.peers)
  transformers  static-batch `generate` in bf16 at batch 1 and 16, in a child process (an
                engine-only figure, no HTTP), and optionally `transformers serve
                --continuous-batching` (`--transformers-serve`; needs FastAPI, see below)
Load: concurrency 1/4/16/64 (`--quick`: 1 and 16, fewer requests), streaming, temperature 0,
max_tokens 64 with `ignore_eos`, fixed seeded prompt sets (distinct per level and request).
Prints one table (TTFT, inter-chunk gaps, aggregate output tok/s, peak RSS of the server's
process tree) and our ratios to each peer against the goals. Peers are optional: when one
cannot be built or started, a note says so and the run goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from tools.bench.hf_engine import run_transformers_engine, transformers_engine
from tools.bench.load import (
    LEVELS,
    QUICK_LEVELS,
    SEED,
    LevelResult,
    level_prompts,
    one_request,
    run_level,
)
from tools.bench.report import print_report, ratios, row
from tools.bench.servers import Server, llama_server, ours, transformers_serve
from tools.launcher.children import DEFAULT_MODEL


async def measure(
    server: Server, levels: tuple[tuple[int, int], ...], max_tokens: int, seed: int
) -> list[LevelResult]:
    limits = httpx.Limits(max_connections=128, max_keepalive_connections=128)
    async with httpx.AsyncClient(
        base_url=server.url, headers=server.headers, timeout=600, limits=limits
    ) as client:
        warm = await one_request(client, server.model, "warm up", 4, server.extra)
        if warm.error:
            raise RuntimeError(f"warm-up request failed: {warm.error}")
        results = []
        for concurrency, num_requests in levels:
            prompts = level_prompts(concurrency, num_requests, seed)
            result = await run_level(
                client,
                server.model,
                prompts,
                concurrency,
                max_tokens,
                server.extra,
                server.pids or None,
            )
            print("  " + row(server.name, result.summary()), flush=True)
            if server.pid_names and result.peak_rss_by_root:
                parts = [
                    f"{server.pid_names.get(pid, pid)} {rss / 2**20:.0f}"
                    for pid, rss in sorted(result.peak_rss_by_root.items(), key=lambda kv: -kv[1])
                ]
                print(f"    peak RSS by process (MiB): {', '.join(parts)}", flush=True)
            results.append(result)
        return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    levels = QUICK_LEVELS if args.quick else LEVELS
    if args.levels:
        levels = tuple(tuple(int(x) for x in lv.split("x")) for lv in args.levels.split(","))
    report: dict[str, Any] = {
        "model": args.model,
        "max_tokens": args.max_tokens,
        "seed": args.seed,
        "cpus": os.cpu_count(),
        "levels": levels,
        "servers": {},
        "notes": [],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    only = set(args.only.split(",")) if args.only else {"ours", "llama", "transformers"}
    http_servers = [("ours", ours), ("llama", llama_server)]
    for key, factory in http_servers:
        if key not in only:
            continue
        print(f"\n-- {key} --", flush=True)
        try:
            with factory(args) as server:
                results = asyncio.run(measure(server, levels, args.max_tokens, args.seed))
            report["servers"][server.name] = [r.summary() for r in results]
        except Exception as exc:  # noqa: BLE001 - a peer failing must not stop the bench
            if key == "ours":
                raise
            report["notes"].append(f"{key}: skipped ({type(exc).__name__}: {exc})")
            print(f"  skipped: {exc}", flush=True)
    if "transformers" in only:
        print("\n-- transformers generate (bf16, static batch, in a child process) --", flush=True)
        batches = [1, 16]
        try:
            engine = run_transformers_engine(args, batches)
            report["servers"]["transformers generate bf16"] = [
                {
                    "concurrency": r["batch"],
                    "requests": r["batch"],
                    "errors": 0,
                    "first_error": "",
                    "ttft_p50_ms": None,
                    "ttft_p95_ms": None,
                    "itl_p50_ms": None,
                    "itl_p95_ms": None,
                    "tpot_p50_ms": None,
                    "output_tokens": r["tokens"],
                    "tokens_min": r["tokens"] // r["batch"],
                    "tokens_max": r["tokens"] // r["batch"],
                    "tokens_from_usage": True,
                    "wall_s": r["wall_s"],
                    "tok_s": r["tok_s"],
                    "peak_rss_mib": engine["peak_rss_mib"],
                }
                for r in engine["rows"]
            ]
            for s in report["servers"]["transformers generate bf16"]:
                print("  " + row("transformers generate bf16", s), flush=True)
            report["notes"].append(
                f"transformers generate: load {engine['load_s']:.1f}s, {engine['threads']} "
                "torch threads, tok/s = batch x max_tokens / generate() wall (incl. prefill)"
            )
        except Exception as exc:  # noqa: BLE001
            report["notes"].append(f"transformers generate: skipped ({type(exc).__name__}: {exc})")
            print(f"  skipped: {exc}", flush=True)
        if args.transformers_serve:
            print("\n-- transformers serve --continuous-batching --", flush=True)
            try:
                with transformers_serve(args) as server:
                    results = asyncio.run(measure(server, levels, args.max_tokens, args.seed))
                report["servers"][server.name] = [r.summary() for r in results]
            except Exception as exc:  # noqa: BLE001
                report["notes"].append(f"transformers serve: skipped ({type(exc).__name__}: {exc})")
                print(f"  skipped: {exc}", flush=True)
        else:
            report["notes"].append(
                "transformers serve --continuous-batching: not run (--transformers-serve "
                "enables it; needs FastAPI and sizes its KV cache for a GPU)"
            )
    for name, summaries in report["servers"].items():
        for s in summaries:
            if s.get("errors"):
                report["notes"].append(
                    f"{name} c={s['concurrency']}: {s['errors']} failed request(s), "
                    f"first: {s['first_error']}"
                )
            if s["tokens_min"] != args.max_tokens or s["tokens_max"] != args.max_tokens:
                report["notes"].append(
                    f"{name} c={s['concurrency']}: generated {s['tokens_min']}-"
                    f"{s['tokens_max']} tokens per request, not {args.max_tokens}"
                )
    report["ratios"] = ratios(report)
    return report


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.bench",
        description=__doc__.split("\n\n")[0],
        epilog="Run nothing else on the machine meanwhile; expect +-20-30%% between runs.",
    )
    p.add_argument("--quick", action="store_true", help="concurrency 1 and 16 with few requests")
    p.add_argument("--only", help="comma list of ours,llama,transformers (default: all)")
    p.add_argument("--url", help="an already running edge for ours, e.g. http://127.0.0.1:8000")
    p.add_argument("--api-key", default=os.environ.get("LLMAAS_DEV_KEY", ""), help="with --url")
    p.add_argument("--json", dest="json_out", help="write the report as JSON to this file")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--levels", help="override, e.g. 1x4,16x16 (concurrency x requests)")
    p.add_argument("--workers", type=int, default=int(os.environ.get("LLMAAS_WORKERS", "1")))
    p.add_argument(
        "--transformers-serve",
        action="store_true",
        help="also run `transformers serve --continuous-batching` (converts the GGUF once)",
    )
    p.add_argument(
        "--serve-timeout", type=float, default=300.0, help="seconds for transformers serve to start"
    )
    p.add_argument(
        "--engine-timeout",
        type=float,
        default=900.0,
        help="seconds for the transformers engine run",
    )
    p.add_argument("--engine-child", help=argparse.SUPPRESS)
    p.add_argument("--convert", action="store_true", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.engine_child:
        result = transformers_engine(
            [int(b) for b in args.engine_child.split(",")], args.max_tokens, args.seed, args.convert
        )
        print(json.dumps(result))
        return
    report = run(args)
    print_report(report)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=2, default=str) + "\n")
        print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
