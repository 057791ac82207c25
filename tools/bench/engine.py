"""The torch engine alone (no gRPC, no HTTP): one benchmark, two measurements.

`concurrency`: N concurrent greedy requests vs 1 through LLMEngine (scheduler, sampler,
model runner). Fixed prompts (distinct from the first token: no prefix reuse flatters the
numbers), ignore_eos, all N added at once. Prints one line per run:
`N=16 prompt=132 tokens=1024 time=…s throughput=…tok/s ttft p50=…ms p95=…ms max_step=…ms`
(TTFT: from add_request to the step that returned the first token; max_step: the longest
step, i.e. the longest stall any running stream saw).

`quant`: the ModelRunner per quant mode (no scheduler): prefill tok/s for 1x132 and 16x132
tokens (one `prefill_batch` forward) and decode ms/step + tok/s at batch 1, 16 and 64 (KV
~132..160 tokens deep). Every figure is the median of several runs with the [min-max]
range: the machine may be shared, compare rows of one run only.

    .venv/bin/python -m tools.bench.engine concurrency --num-seqs 16 --max-tokens 64 --prompt-tokens 132 --repeats 3
    .venv/bin/python -m tools.bench.engine concurrency --constrained --repeats 5

`--constrained`: per repeat, a batch of N plain requests then N constrained by a JSON schema
(an object holding an array of at least 64 strings, so no row finishes before max_tokens):
the median decode step (steps with no prefill) of each, and their ratio.
    .venv/bin/python -m tools.bench.engine quant --quant none,int8,int4 --threads 2

(Formerly `python -m worker.bench` and `python -m tools.engine_bench`.)
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import time
from collections.abc import Callable

import torch

from worker.config import WorkerConfig
from worker.engine import LLMEngine
from worker.grammar import Matcher, allocate_bitmask, apply_bitmask
from worker.layers.quant import QUANT_MODES, quantize_model
from worker.loader import load_model
from worker.model_runner import ModelRunner
from worker.sampling_params import SamplingParams

# -- concurrency: LLMEngine, N requests at once vs 1 ----------------------------------------

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


# --constrained: an answer no row can finish within max_tokens (so every step has N rows)
LONG_JSON = json.dumps(
    {
        "type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string"}, "minItems": 64}},
        "required": ["items"],
    }
)


def grammar_step_cost(engine: LLMEngine, grammar, outputs: list[list[int]]) -> list[float]:
    """Seconds of the grammar's own work per step for these rows (mask fill, mask applied
    to [N, V] logits, each row's token accepted), replaying the constrained run's tokens:
    each step's fastest of 5 tries, so load on the machine does not count."""
    rows = len(outputs)
    logits = torch.zeros(rows, engine.vocab_size or engine.tokenizer.vocab_size)
    matchers = [Matcher(grammar) for _ in range(rows)]
    bitmask = allocate_bitmask(rows, logits.shape[1])
    costs = []
    for step in range(min(len(ids) for ids in outputs)):
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for i, matcher in enumerate(matchers):
                matcher.fill_bitmask(bitmask, i)
            apply_bitmask(logits, bitmask, list(range(rows)))
            best = min(best, time.perf_counter() - t)
        t = time.perf_counter()
        for matcher, ids in zip(matchers, outputs, strict=True):
            matcher.accept(ids[step])
        costs.append(best + time.perf_counter() - t)
    return costs


def decode_steps(
    engine: LLMEngine, num_seqs: int, max_tokens: int, tag: str, grammar=None, outputs=None
) -> list[float]:
    """Seconds of each step of N greedy requests once all have their first token; each
    request's output ids are appended to `outputs` (a list) when given."""
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, grammar=grammar)
    for i, prompt in enumerate(prompts(engine, num_seqs, 0, tag)):
        seq = engine.add_request(f"steps-{tag}-{i}", prompt, params)
        if outputs is not None:
            outputs.append(seq.output_ids)
    started: set[str] = set()
    steps = []
    while engine.has_unfinished():
        t = time.perf_counter()
        outputs = engine.step()
        if len(started) == num_seqs and len(outputs) == num_seqs:
            steps.append(time.perf_counter() - t)
        started.update(out.request_id for out in outputs)
    return steps


def constrained_runs(engine: LLMEngine, args: argparse.Namespace) -> None:
    """The fastest decode step of each batch (the least disturbed by other load on the
    machine) and the median, plain vs constrained, interleaved."""
    grammar = engine.grammars.json_schema(LONG_JSON)
    ratios: list[float] = []
    costs: list[float] = []
    for r in range(args.repeats):
        plain = decode_steps(engine, args.num_seqs, args.max_tokens, f"p{r}-")
        outputs: list[list[int]] = []
        held = decode_steps(engine, args.num_seqs, args.max_tokens, f"c{r}-", grammar, outputs)
        ratios.append(min(held) / min(plain))
        own = statistics.median(grammar_step_cost(engine, grammar, outputs))
        costs.append(own / min(plain))
        print(
            f"N={args.num_seqs} decode step min/p50: plain={min(plain) * 1e3:.1f}/"
            f"{statistics.median(plain) * 1e3:.1f}ms constrained={min(held) * 1e3:.1f}/"
            f"{statistics.median(held) * 1e3:.1f}ms (min: {(ratios[-1] - 1) * 100:+.1f}%); "
            f"grammar work p50 {own * 1e3:.2f}ms/step = {costs[-1] * 100:.1f}% of the fastest "
            "plain step",
            flush=True,
        )
    print(
        f"constrained/plain fastest step: median x{statistics.median(ratios):.3f} "
        f"[{min(ratios):.3f}-{max(ratios):.3f}] over {len(ratios)} repeats; grammar work "
        f"{statistics.median(costs) * 100:.1f}% [{min(costs) * 100:.1f}-{max(costs) * 100:.1f}] "
        "of the fastest plain step"
    )


def concurrency_main(args: argparse.Namespace, _p: argparse.ArgumentParser) -> None:
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
    if args.constrained:
        constrained_runs(engine, args)
        return
    for r in range(args.repeats):
        single = run(engine, 1, args.max_tokens, args.prompt_tokens, f"s{r}-")
        batched = run(engine, args.num_seqs, args.max_tokens, args.prompt_tokens, f"b{r}-")
        print(f"speed-up x{batched / single:.1f} with {args.num_seqs} concurrent requests")


# -- quant: ModelRunner prefill / decode per quant mode --------------------------------------

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


def quant_main(args: argparse.Namespace, p: argparse.ArgumentParser) -> None:
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.engine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("concurrency", help="N concurrent requests vs 1 through LLMEngine")
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
    p.add_argument(
        "--constrained", action="store_true", help="per-step cost of JSON-schema-constrained rows"
    )
    p.set_defaults(measure=concurrency_main)
    p = sub.add_parser("quant", help="ModelRunner prefill/decode speed per quant mode")
    p.add_argument("--quant", default="none,int8,int4", help="comma-separated: none, int8, int4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="prefill runs per figure")
    p.add_argument("--steps", type=int, default=16, help="decode steps per figure")
    p.add_argument("--model", default="smollm2:135m")
    p.set_defaults(measure=quant_main)
    args = parser.parse_args(argv)
    args.measure(args, sub.choices[args.what])


if __name__ == "__main__":
    main()
