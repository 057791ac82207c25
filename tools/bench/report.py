"""The comparison's table and our ratios to each peer against the goals."""

from __future__ import annotations

import math
from typing import Any

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
