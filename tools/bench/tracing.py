"""What distributed tracing costs: p50 latency of short non-streamed chat requests through
the whole mesh, with tracing off and with every component exporting spans over OTLP.

    .venv/bin/python -m tools.bench.tracing                # 150 requests per side
    .venv/bin/python -m tools.bench.tracing -n 300 --json .run/bench_tracing.json

Two meshes run side by side (free ports, no embedding worker): "off" without any OTEL_*
variable, "on" with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an in-process OTLP sink
(`tools.dev.otlp_sink`), default batch-export settings. Requests alternate between the two
(off, on, off, on, ...), so drift of the machine (thermal, other processes) hits both
sides alike. Each request: temperature 0, `max_tokens` 4, a distinct prompt (no prefix-cache
flattery). Reported: p50 / p90 / mean client latency per side, the p50 change in percent,
and the spans the sink received (proof that the "on" side exported).

"Tracing off costs nothing": every tracing helper returns at its first line when no
provider is installed; `--micro` times those off-path calls (what one request runs through
when tracing is off) and compares them with the measured p50.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path

import httpx

from tools.dev.otlp_sink import ThreadedSink
from tools.launcher.handle import MeshHandle
from tools.launcher.start import start_mesh

MODEL = "smollm2:135m"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _request(client: httpx.Client, mesh: MeshHandle, i: int, max_tokens: int) -> float:
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"Request {i}: name a colour."}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    t0 = time.perf_counter()
    resp = client.post(
        f"{mesh.url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {mesh.api_key}"},
    )
    elapsed = time.perf_counter() - t0
    resp.raise_for_status()
    return elapsed


def off_path_cost_ns(repeat: int = 200_000) -> float:
    """ns per request of the tracing calls a request makes with tracing off (edge middleware
    check, metadata injection x3, span attributes x4, interceptor checks x3, phase record)."""
    from mesh import tracing  # noqa: PLC0415

    assert not tracing.enabled()
    md = [("x-request-id", "r")]

    def one_request() -> None:
        tracing.enabled()
        tracing.inject_metadata(md)
        tracing.inject_metadata()
        tracing.inject_metadata()
        for _ in range(4):
            tracing.set_attributes({"k": 1})
        tracing.current_context()
        tracing.record_phases(None, submitted=0, scheduled=0, first_token=0, finished=0)
        for _ in range(3):
            tracing._state.tracer is None  # noqa: B015 - the interceptor's pass-through check

    return timeit.timeit(one_request, number=repeat) / repeat * 1e9


def on_path_cost_us(sink_port: int, repeat: int = 250) -> float:
    """CPU µs per request of the tracing work of all four services with tracing on, in one
    process: 7 spans (edge, router, filter, worker + queue/prefill/decode), the context
    injections/extractions and attributes, and their batched OTLP export (flushed at the end).
    process_time() counts every thread, the exporter's and the in-process sink's included:
    an upper bound. 250 requests = 1750 spans stay under the SDK's default queue of 2048."""
    from mesh import tracing  # noqa: PLC0415

    saved = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
    try:
        assert tracing.setup_tracing("bench")
        attrs = tracing.genai_request_attributes("chat", MODEL, 8, 0.0)
        done = tracing.genai_response_attributes(MODEL, ["stop"], 35, 8, "id")
        t0 = time.process_time()
        for _ in range(repeat):
            edge, tok_e = tracing.start_server_span(
                "POST /v1/chat/completions", {}, {"url.path": "/v1"}
            )
            md = tracing.inject_metadata([("x-request-id", "r")])
            router, tok_r = tracing.start_server_span(
                "Inference/ChatCompletion", md, {"rpc.system": "grpc"}
            )
            tracing.set_attributes({tracing.LLMAAS_TENANT: "acme"})
            tracing.set_attributes(attrs)
            flt, tok_f = tracing.start_server_span(
                "SecurityFilter/Check", tracing.inject_metadata(), {}
            )
            tracing.end_server_span(flt, tok_f)
            wrk, tok_w = tracing.start_server_span("Worker/Generate", tracing.inject_metadata(), {})
            now = time.monotonic()
            tracing.record_phases(
                tracing.current_context(),
                submitted=now - 0.2,
                scheduled=now - 0.19,
                first_token=now - 0.1,
                finished=now,
                attributes={"k": "v"},
            )
            tracing.end_server_span(wrk, tok_w)
            tracing.set_attributes(done)
            tracing.end_server_span(router, tok_r)
            tracing.end_server_span(edge, tok_e)
        tracing.force_flush(30_000)
        return (time.process_time() - t0) / repeat * 1e6
    finally:
        tracing.shutdown_tracing()
        if saved is None:
            os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        else:
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = saved


def run(n: int, warmup: int, max_tokens: int) -> dict:
    sink = ThreadedSink()
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    base.pop("LLMAAS_DEV_KEY", None)
    on_env = {**base, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.port}"}
    tmp = Path(tempfile.mkdtemp(prefix="bench-tracing-"))
    meshes: dict[str, MeshHandle] = {}
    try:
        meshes["off"] = start_mesh(base, run_dir=tmp / "off", wait=False, embeddings=False)
        meshes["on"] = start_mesh(on_env, run_dir=tmp / "on", wait=False, embeddings=False)
        for mesh in meshes.values():
            mesh.wait_ready()
        latencies: dict[str, list[float]] = {"off": [], "on": []}
        with httpx.Client(timeout=120) as client:
            for i in range(warmup):
                for mesh in meshes.values():
                    _request(client, mesh, -1 - i, max_tokens)
            for i in range(n):
                order = ("off", "on") if i % 2 == 0 else ("on", "off")  # no side always first
                for side in order:
                    latencies[side].append(_request(client, meshes[side], i, max_tokens))
        sink.wait_for(lambda spans: len(spans) >= n * 4, timeout_s=15)
        spans = sink.spans
    finally:
        for mesh in meshes.values():
            mesh.stop()
    try:
        on_cpu_us = on_path_cost_us(sink.port)
    finally:
        sink.stop()
    result: dict = {"requests_per_side": n, "warmup": warmup, "max_tokens": max_tokens}
    for side, values in latencies.items():
        result[side] = {
            "p50_ms": _quantile(values, 0.5) * 1000,
            "p90_ms": _quantile(values, 0.9) * 1000,
            "mean_ms": statistics.fmean(values) * 1000,
        }
    result["p50_change_pct"] = (result["on"]["p50_ms"] / result["off"]["p50_ms"] - 1) * 100
    result["mean_change_pct"] = (result["on"]["mean_ms"] / result["off"]["mean_ms"] - 1) * 100
    # Adjacent off/on pairs share the machine's state: the median of their ratios is the
    # figure least moved by other load on the machine.
    ratios = [b / a for a, b in zip(latencies["off"], latencies["on"], strict=True)]
    result["paired_median_change_pct"] = (statistics.median(ratios) - 1) * 100
    result["on_path_cpu_us_per_request"] = on_cpu_us
    result["on_path_share_of_p50_pct"] = on_cpu_us / (result["off"]["p50_ms"] * 1000) * 100
    result["spans_exported"] = len(spans)
    result["services"] = sorted({s.service for s in spans})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.tracing", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("-n", type=int, default=150, help="requests per side (default 150)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--micro", action="store_true", help="also time the tracing-off code path")
    args = parser.parse_args(argv)
    result = run(args.n, args.warmup, args.max_tokens)
    if args.micro:
        result["off_path_ns_per_request"] = off_path_cost_ns()
        result["off_path_share_of_p50_pct"] = (
            result["off_path_ns_per_request"] / (result["off"]["p50_ms"] * 1e6) * 100
        )
    off, on = result["off"], result["on"]
    print(f"{args.n} requests per side, max_tokens {args.max_tokens}, alternating off/on")
    print(
        f"  tracing off: p50 {off['p50_ms']:.1f} ms  p90 {off['p90_ms']:.1f} ms  mean {off['mean_ms']:.1f} ms"
    )
    print(
        f"  tracing on : p50 {on['p50_ms']:.1f} ms  p90 {on['p90_ms']:.1f} ms  mean {on['mean_ms']:.1f} ms"
    )
    print(
        f"  p50 change {result['p50_change_pct']:+.2f} %  (mean {result['mean_change_pct']:+.2f} %, "
        f"median of paired ratios {result['paired_median_change_pct']:+.2f} %)"
    )
    print(
        f"  tracing-on CPU, all four services' spans + export: {result['on_path_cpu_us_per_request']:.0f} µs "
        f"per request ({result['on_path_share_of_p50_pct']:.2f} % of p50)"
    )
    print(f"  spans exported: {result['spans_exported']} from {', '.join(result['services'])}")
    if args.micro:
        print(
            f"  tracing-off code path: {result['off_path_ns_per_request']:.0f} ns per request "
            f"({result['off_path_share_of_p50_pct']:.4f} % of p50)"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
