"""Engine-level speed of the torch worker's ModelRunner (no HTTP, no scheduler).

Per quant mode: prefill tok/s for 1x132 and 16x132 tokens (one `prefill_batch` forward) and
decode ms/step + tok/s at batch 1, 16 and 64 (KV ~132..160 tokens deep). Every figure is the
median of several runs with the [min-max] range: the machine may be shared, compare rows of
one run only.

    .venv/bin/python -m tools.engine_bench --quant none,int8,int4 --threads 2
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
import time
from collections.abc import Callable

import torch

from worker.layers.quant import QUANT_MODES, quantize_model
from worker.loader import load_model
from worker.model_runner import ModelRunner

PROMPT_LEN, MAX_SEQS, MAX_LEN = 132, 64, 256


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    """Seconds per call, `repeats` calls after one warm-up."""
    fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def fmt(values: list[float], scale: float = 1.0) -> str:
    v = sorted(x * scale for x in values)
    return f"{statistics.median(v):7.1f} [{v[0]:.1f}-{v[-1]:.1f}]"


def bench_prefill(runner: ModelRunner, prompts: list[list[int]], repeats: int) -> list[float]:
    """tok/s of one prefill_batch over all prompts (slots 0..n-1)."""
    n = len(prompts)
    secs = timed(lambda: runner.prefill_batch(list(range(n)), prompts, [0] * n), repeats)
    return [n * len(prompts[0]) / s for s in secs]


def bench_decode(runner: ModelRunner, batch: int, steps: int) -> list[float]:
    """Seconds per decode step for slots 0..batch-1, positions advancing from PROMPT_LEN."""
    slots, ids = list(range(batch)), [17] * batch
    runner.decode(slots, ids, [PROMPT_LEN] * batch)  # warm-up
    out = []
    for i in range(steps):
        t = time.perf_counter()
        runner.decode(slots, ids, [PROMPT_LEN + i] * batch)
        out.append(time.perf_counter() - t)
    return out


def run_mode(base: torch.nn.Module, lm, quant: str, args: argparse.Namespace) -> list[str]:
    model = quantize_model(copy.deepcopy(base), quant) if quant != "none" else base
    runner = ModelRunner(
        model,
        lm.config,
        max_num_seqs=MAX_SEQS,
        max_model_len=MAX_LEN,
        dtype=torch.bfloat16,
        device="cpu",
    )
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(100, lm.config.vocab_size, (MAX_SEQS, PROMPT_LEN), generator=g).tolist()
    row = [
        quant,
        fmt(bench_prefill(runner, prompts[:1], args.repeats)),
        fmt(bench_prefill(runner, prompts[:16], args.repeats)),
    ]
    for start in range(16, MAX_SEQS, 16):  # fill the other slots for the batch-64 decode
        runner.prefill_batch(list(range(start, start + 16)), prompts[start : start + 16], [0] * 16)
    for batch in (1, 16, 64):
        secs = bench_decode(runner, batch, args.steps)
        row += [fmt(secs, 1e3), fmt([batch / s for s in secs])]
    return row


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quant", default="none,int8,int4", help="comma-separated: none, int8, int4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="prefill runs per figure")
    p.add_argument("--steps", type=int, default=16, help="decode steps per figure")
    p.add_argument("--model", default="smollm2:135m")
    args = p.parse_args()
    modes = args.quant.split(",")
    if bad := [m for m in modes if m not in QUANT_MODES]:
        p.error(f"unknown quant {bad}; choose from {QUANT_MODES}")
    torch.set_num_threads(args.threads)
    lm = load_model(args.model, torch.bfloat16, quant="none")
    head = [
        "quant",
        "prefill 1x132 tok/s",
        "prefill 16x132 tok/s",
        "decode b1 ms",
        "b1 tok/s",
        "b16 ms",
        "b16 tok/s",
        "b64 ms",
        "b64 tok/s",
    ]
    print(
        f"threads={args.threads}; median [min-max]; prefill x{args.repeats}, decode {args.steps} steps"
    )
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head), flush=True)
    for quant in modes:
        print("| " + " | ".join(run_mode(lm.model, lm, quant, args)) + " |", flush=True)
    print(
        f"max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
        f"(all modes loaded; KV cache {MAX_SEQS}x{MAX_LEN})"
    )


if __name__ == "__main__":
    main()
