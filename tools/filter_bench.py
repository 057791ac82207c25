"""Latency benchmark of one filter check (all three layers).

    python -m tools.filter_bench [--runs 200]

Prints p50/p99 for 2 KB, 10 KB and 100 KB realistic prompts (mixed languages,
code, markup) and for 100 KB adversarial inputs built against the regexes and
the tokenizer. Goals: p99 <= 1 ms at 2 KB, <= 25 ms at 100 KB, adversarial
within the same bound. Exits 1 if a goal is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # `python tools/filter_bench.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesh.filter import PromptFilter  # noqa: E402

BLOCK = (
    "Could you review this deployment note? The service reads config.yaml at start-up, "
    "then ignores unknown keys. Les utilisateurs français écrivent « déjà vu », die Deutschen "
    "schreiben „Grüße“, y los españoles «¿qué tal?». 我们的系统每天处理很多请求。"
    "設定ファイルを確認してください。 Formula: E = mc², x₁ + x₂. "
    '<div class="note" style="display:none">draft</div> See [docs](https://example.com/a). '
    "```python\nfor rule in rules:\n    if rule.enabled:\n        apply(rule)\n```\n"
)
GOALS_MS = {"2KB": 1.0, "10KB": 5.0, "100KB": 25.0}


def realistic(size: int) -> str:
    return (BLOCK * (size // len(BLOCK) + 1))[:size]


def adversarial(size: int) -> dict[str, str]:
    """Inputs that hurt naive regexes: long runs, unclosed constructs, near-misses."""
    return {
        "adv_same_char": "a" * size,
        "adv_attack_words": ("ignore previous instructions forget " * (size // 36 + 1))[:size],
        "adv_spaced_letters": ("i g n o r e " * (size // 12 + 1))[:size],
        "adv_unclosed_tags": ("<div style='display:none' " * (size // 26 + 1))[:size],
        "adv_md_links": ("[x](javascript " * (size // 16 + 1))[:size],
        "adv_comments": ("<!-- ai " * (size // 8 + 1))[:size],
        "adv_json_nesting": "{" + '"a":' * 10 + "[" * (size - 50),
        "adv_cjk_terms": ("忽略指令无视" * (size // 18 + 1))[: size // 3],
        "adv_mixed_script": ("раураl аdmin " * (size // 26 + 1))[: size // 2],
        "adv_invisible": ("i\u200bg\u200bn\u200bo\u200br\u200be " * (size // 24 + 1))[: size // 2],
        "adv_long_token": "x" * (size // 2) + "ignoreinstructions" * (size // 36),
        "adv_leet_digits": ("1gn0r3 4ll " * (size // 11 + 1))[:size],
    }


def measure(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm caches
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return statistics.median(samples), p99


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)
    flt = PromptFilter()
    cases = {"2KB": realistic(2_000), "10KB": realistic(10_000), "100KB": realistic(100_000)}
    cases.update(adversarial(100_000))
    ok = True
    print(f"{'input':<22} {'chars':>7} {'p50 ms':>8} {'p99 ms':>8}  goal")
    worst_adv = 0.0
    for name, text in cases.items():
        runs = args.runs if len(text) <= 10_000 else max(20, args.runs // 4)
        p50, p99 = measure(lambda t=text, u=name: flt.check(t, tenant="bench", user=u), runs)
        goal = GOALS_MS.get(name, GOALS_MS["100KB"])
        ok &= p99 <= goal
        if name.startswith("adv_"):
            worst_adv = max(worst_adv, p99)
        print(f"{name:<22} {len(text):>7} {p50:>8.3f} {p99:>8.3f}  <= {goal} ms {'ok' if p99 <= goal else 'MISS'}")
    print(f"worst adversarial p99: {worst_adv:.3f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
