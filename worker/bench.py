"""`python -m worker.bench`: N concurrent greedy requests vs 1, on the engine alone (no gRPC).

Fixed prompts (distinct from the first token: no prefix reuse flatters the numbers),
ignore_eos, all N added at once. Prints one line per run:
`N=16 prompt=132 tokens=1024 time=…s throughput=…tok/s ttft p50=…ms p95=…ms max_step=…ms`
(TTFT: from add_request to the step that returned the first token; max_step: the longest
step, i.e. the longest stall any running stream saw).

    .venv/bin/python -m worker.bench --num-seqs 16 --max-tokens 64 --prompt-tokens 132 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from worker.config import WorkerConfig
from worker.engine import LLMEngine
from worker.sampling_params import SamplingParams

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."


def prompts(engine: LLMEngine, num_seqs: int, num_tokens: int, tag: str) -> list[str | list[int]]:
    """num_tokens 0: the short text prompt; else token ids, exactly num_tokens each."""
    if not num_tokens:
        return [f"{tag}{i}. {PROMPT}" for i in range(num_seqs)]
    body = engine.tokenizer.encode(" ".join([PROMPT] * (num_tokens // 8 + 2)))
    return [(engine.tokenizer.encode(f"{tag}{i}.") + body)[:num_tokens] for i in range(num_seqs)]


def pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run(engine: LLMEngine, num_seqs: int, max_tokens: int, prompt_tokens: int, tag: str) -> float:
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True)
    started = time.perf_counter()
    for i, prompt in enumerate(prompts(engine, num_seqs, prompt_tokens, tag)):
        engine.add_request(f"bench-{tag}-{i}", prompt, params)
    first: dict[str, float] = {}
    num_tokens, max_step = 0, 0.0
    while engine.has_unfinished():
        t = time.perf_counter()
        outputs = engine.step()
        now = time.perf_counter()
        max_step = max(max_step, now - t)
        for out in outputs:
            num_tokens += out.num_tokens
            first.setdefault(out.request_id, now - started)
    elapsed = time.perf_counter() - started
    rate = num_tokens / elapsed
    ttft = sorted(s * 1e3 for s in first.values())
    print(
        f"N={num_seqs} prompt={prompt_tokens or 'short'} tokens={num_tokens} time={elapsed:.2f}s "
        f"throughput={rate:.1f}tok/s ttft p50={pct(ttft, 50):.0f}ms p95={pct(ttft, 95):.0f}ms "
        f"max_step={max_step * 1e3:.0f}ms",
        flush=True,
    )
    return rate


def main() -> None:
    p = argparse.ArgumentParser(
        prog="python -m worker.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defaults = WorkerConfig()
    p.add_argument("--model", default=defaults.model)
    p.add_argument("--dtype", default=defaults.dtype)
    p.add_argument("--device", default=defaults.device)
    p.add_argument("--num-seqs", type=int, default=16)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--prompt-tokens", type=int, default=0, help="0: a short text prompt")
    p.add_argument("--max-prefill-tokens", type=int, default=defaults.max_prefill_tokens)
    p.add_argument("--max-prefill-chunk", type=int, default=defaults.max_prefill_chunk)
    p.add_argument("--num-threads", type=int, default=defaults.num_threads)
    p.add_argument("--repeats", type=int, default=1)
    args = p.parse_args()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    config = WorkerConfig(
        model=args.model,
        dtype=args.dtype,
        device=args.device,
        max_num_seqs=args.num_seqs,
        max_prefill_tokens=args.max_prefill_tokens,
        max_prefill_chunk=args.max_prefill_chunk,
    )
    engine, _ = LLMEngine.from_config(config)
    print(
        f"threads={torch.get_num_threads()} max_prefill_tokens={config.max_prefill_tokens} "
        f"max_prefill_chunk={config.max_prefill_chunk}"
    )
    run(engine, 1, 8, 0, "warm")
    for r in range(args.repeats):
        single = run(engine, 1, args.max_tokens, args.prompt_tokens, f"s{r}-")
        batched = run(engine, args.num_seqs, args.max_tokens, args.prompt_tokens, f"b{r}-")
        print(f"speed-up x{batched / single:.1f} with {args.num_seqs} concurrent requests")


if __name__ == "__main__":
    main()
