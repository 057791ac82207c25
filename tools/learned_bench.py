"""Latency of the learned and decoding layers alone, and of the full check.

    python -m tools.learned_bench [--runs 200]

Prints p50/p99 in ms (wall clock) for the filter benchmark's realistic 2 KB
and 100 KB prompts and two adversarial 100 KB inputs. Figures only, no goals.
"""

from __future__ import annotations

import argparse
import base64
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesh.filter.decode import check_decoded  # noqa: E402
from mesh.filter.learned import check_learned, model  # noqa: E402
from mesh.filter.normalize import normalize  # noqa: E402
from tools.filter_bench import realistic  # noqa: E402
from tools.filter_heldout import full_check  # noqa: E402


def _time(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    for _ in range(3):
        fn()
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    out.sort()
    return statistics.median(out), out[min(len(out) - 1, int(len(out) * 0.99))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    from mesh.filter import PromptFilter

    model()  # load once
    b64 = base64.b64encode(realistic(75_000).encode()).decode()
    inputs = {
        "2KB": realistic(2_000),
        "100KB": realistic(100_000),
        "adv_base64_100KB": b64[:100_000],
        "adv_hexlike_100KB": ("deadbeef01 " * 10_000)[:100_000],
    }
    gc.collect()
    gc.freeze()
    flt = PromptFilter()
    print(f"{'input':<20} {'learned p50/p99':>17} {'decode p50/p99':>17} {'full p50/p99':>17}")
    for name, text in inputs.items():
        runs = args.runs if len(text) <= 10_000 else max(20, args.runs // 5)
        folded = normalize(text).folded
        lp = _time(lambda t=folded: check_learned(t), runs)
        dp = _time(lambda t=text: check_decoded(t), runs)
        fp = _time(lambda t=text, u=name: full_check(flt, t, user=u), runs)
        print(
            f"{name:<20} {lp[0]:>8.3f}/{lp[1]:<8.3f} {dp[0]:>8.3f}/{dp[1]:<8.3f} {fp[0]:>8.3f}/{fp[1]:<8.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
