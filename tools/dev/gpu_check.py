"""One-script GPU check: our ModelRunner against transformers `generate` on the same weights.

A random-weight Llama-3.2-1B-shaped model (no model file needed: the weights are drawn
here), bf16, greedy: for batch 1, 16 and 64, prefill PROMPT_LEN tokens per sequence and
decode `--tokens`, on our runner (slot KV cache, batched decode, greedy argmax on the device)
and on transformers' `generate` (static batch, min_new_tokens = max_new_tokens). Reports
output tok/s (including the prefill) and peak GPU memory of each, as a table and, with
$OUT set (the device tool's output folder), as $OUT/gpu_check.json.

    python -m tools.dev.gpu_check                   # on CUDA, the 1B shape
    python -m tools.dev.gpu_check --device cpu --tiny --batches 1,4 --tokens 8   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from worker.model_runner import ModelRunner
from worker.models.llama import LlamaConfig, LlamaForCausalLM, internal_to_hf

PROMPT_LEN = 128
LLAMA_1B = dict(  # Llama-3.2-1B's shape
    hidden_size=2048,
    intermediate_size=8192,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
    rope_theta=500000.0,
    rope_scaling={
        "rope_type": "llama3",
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    max_position_embeddings=131072,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
)


def random_model(config: LlamaConfig, device: torch.device, seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    for p in model.parameters():  # small matrices (norms stay 1): activations stay finite
        if p.dim() > 1:
            torch.nn.init.normal_(p, std=0.02)
    return model.to(torch.bfloat16).eval()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


@torch.inference_mode()
def ours(model: LlamaForCausalLM, prompts: torch.Tensor, tokens: int) -> dict[str, Any]:
    device = prompts.device
    batch = prompts.shape[0]
    reset_peak(device)
    runner = ModelRunner(
        model,
        model.config,
        max_num_seqs=batch,
        max_model_len=PROMPT_LEN + tokens,
        dtype=torch.bfloat16,
        device=device,
    )
    slots = list(range(batch))
    rows = prompts.tolist()
    runner.prefill_batch(slots, rows, [0] * batch)  # warm-up (kernels, allocator)
    runner.decode(slots, [r[-1] for r in rows], [PROMPT_LEN] * batch)
    sync(device)
    start = time.perf_counter()
    next_ids = runner.prefill_batch(slots, rows, [0] * batch).argmax(-1).tolist()
    for step in range(tokens - 1):
        logits = runner.decode(slots, next_ids, [PROMPT_LEN + step] * batch)
        next_ids = logits.argmax(-1).tolist()
    sync(device)
    seconds = time.perf_counter() - start
    return {"tok_s": batch * tokens / seconds, "peak_mib": peak_memory_mib(device)}


@torch.inference_mode()
def transformers_generate(
    model: LlamaForCausalLM, prompts: torch.Tensor, tokens: int
) -> dict[str, Any]:
    from transformers import LlamaConfig as HFConfig  # noqa: PLC0415 - optional peer
    from transformers import LlamaForCausalLM as HFLlama  # noqa: PLC0415

    device = prompts.device
    reset_peak(device)
    hf_config = HFConfig(**model.config.to_hf_dict())
    with torch.device(device):
        hf = HFLlama(hf_config).to(torch.bfloat16).eval()
    hf.load_state_dict(internal_to_hf(model), strict=False)  # tied head: no lm_head key
    hf.tie_weights()
    kwargs = dict(do_sample=False, pad_token_id=0, attention_mask=torch.ones_like(prompts))
    hf.generate(prompts, max_new_tokens=2, **kwargs)  # warm-up
    sync(device)
    start = time.perf_counter()
    hf.generate(prompts, max_new_tokens=tokens, min_new_tokens=tokens, **kwargs)
    sync(device)
    seconds = time.perf_counter() - start
    result = {"tok_s": prompts.shape[0] * tokens / seconds, "peak_mib": peak_memory_mib(device)}
    del hf
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cuda")
    p.add_argument("--batches", default="1,16,64")
    p.add_argument("--tokens", type=int, default=64, help="output tokens per sequence")
    p.add_argument("--tiny", action="store_true", help="a 2-layer model (smoke run)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("no CUDA device visible to torch")
    config = LlamaConfig.tiny() if args.tiny else LlamaConfig(**LLAMA_1B)
    model = random_model(config, device, args.seed)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{name}: random Llama, {params:.2f} B parameters, bf16, prompt {PROMPT_LEN}, "
          f"{args.tokens} new tokens, greedy")  # fmt: skip
    report: dict[str, Any] = {"device": name, "params_b": params, "rows": []}
    print(
        f"{'batch':>5} {'ours tok/s':>11} {'ours MiB':>9} {'hf tok/s':>9} {'hf MiB':>7} {'ratio':>6}"
    )
    for batch in (int(b) for b in args.batches.split(",")):
        gen = torch.Generator(device="cpu").manual_seed(args.seed + batch)
        prompts = torch.randint(3, config.vocab_size, (batch, PROMPT_LEN), generator=gen)
        prompts = prompts.to(device)
        ours_row = ours(model, prompts, args.tokens)
        hf_row = transformers_generate(model, prompts, args.tokens)
        ratio = ours_row["tok_s"] / hf_row["tok_s"]
        mib = [
            f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "-" for r in (ours_row, hf_row)
        ]
        print(
            f"{batch:>5} {ours_row['tok_s']:>11.1f} {mib[0]:>9} {hf_row['tok_s']:>9.1f} {mib[1]:>7} {ratio:>5.2f}x"
        )
        report["rows"].append({"batch": batch, "ours": ours_row, "transformers": hf_row})
    if out := os.environ.get("OUT"):
        Path(out, "gpu_check.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
