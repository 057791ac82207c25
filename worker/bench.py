"""`python -m worker.bench`: aggregate decode throughput of N concurrent greedy requests vs 1.

Fixed prompts, ignore_eos, prints one line per run:
`N=16 tokens=1024 time=…s throughput=…tok/s`.
"""

from __future__ import annotations

import argparse
import time

import torch

from worker.config import WorkerConfig
from worker.engine import LLMEngine
from worker.sampling_params import SamplingParams

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def run(engine: LLMEngine, num_seqs: int, max_tokens: int) -> float:
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
    for i in range(num_seqs):  # distinct prompts: no prefix reuse flatters the numbers
        engine.add_request(f"bench-{num_seqs}-{i}", f"{i}. {PROMPT}", params)
    started = time.perf_counter()
    num_tokens = 0
    while engine.has_unfinished():
        num_tokens += sum(out.num_tokens for out in engine.step())
    elapsed = time.perf_counter() - started
    rate = num_tokens / elapsed
    print(f"N={num_seqs} tokens={num_tokens} time={elapsed:.2f}s throughput={rate:.1f}tok/s")
    return rate


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m worker.bench", description=__doc__)
    p.add_argument("--model", default="smollm2:135m")
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--device", default="cpu")
    p.add_argument("--num-seqs", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--num-threads", type=int, default=0)
    args = p.parse_args()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    config = WorkerConfig(
        model=args.model, dtype=args.dtype, device=args.device, max_num_seqs=args.num_seqs,
        max_model_len=512, max_prefill_tokens=512,
    )
    engine, _ = LLMEngine.from_config(config)
    run(engine, 1, 8)  # warm-up
    single = run(engine, 1, args.max_tokens)
    batched = run(engine, args.num_seqs, args.max_tokens)
    print(f"speed-up x{batched / single:.1f} with {args.num_seqs} concurrent requests")


if __name__ == "__main__":
    main()
