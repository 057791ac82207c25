"""Writes a random-weight tiny Llama checkpoint as a Hugging Face directory.

config.json, model.safetensors, tokenizer.json and tokenizer_config.json (with a chat template).
The tokenizer is SmolLM2's (exported from the bundled GGUF), so the vocabulary is real.
Used by tests and GPU smoke checks: `python -m tools.dev.make_tiny_model OUT_DIR [--seed N]`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import AddedToken

from worker.loader import load_tokenizer
from worker.models.llama import LlamaConfig, LlamaForCausalLM, internal_to_hf

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# A thinking model (DeepSeek-R1 style): the generation prompt opens the think block.
THINKING_CHAT_TEMPLATE = CHAT_TEMPLATE.replace(
    "'<|im_start|>assistant\n'", "'<|im_start|>assistant\n<think>\n'"
)
THINK_TOKENS = ("<think>", "</think>")


def tiny_config(vocab_size: int, **overrides: Any) -> LlamaConfig:
    # llama3 rope scaling so the comparison with transformers covers the scaled-frequency path.
    rope_scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    }
    kwargs: dict[str, Any] = dict(
        vocab_size=vocab_size, rope_scaling=rope_scaling, bos_token_id=1, eos_token_id=[2]
    )
    return LlamaConfig.tiny(**(kwargs | overrides))


def make_tiny_model(
    out_dir: str | Path, seed: int = 0, *, thinking: bool = False, **config_overrides: Any
) -> Path:
    """Writes the checkpoint into out_dir; config_overrides go to LlamaConfig (e.g. attention_bias).

    thinking: add `<think>` / `</think>` as (non-special) tokens and use a chat template whose
    generation prompt opens `<think>`, so the worker treats it as a reasoning model.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    if thinking:
        tokenizer.tok.add_tokens(
            [AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS]
        )
        tokenizer.chat_template = THINKING_CHAT_TEMPLATE
    cfg = tiny_config(tokenizer.vocab_size, **config_overrides)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight") or name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.08)  # big enough that logits are well separated
    state = {k: v.contiguous() for k, v in internal_to_hf(model).items()}
    save_file(state, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(cfg.to_hf_dict(), indent=2))
    tokenizer.save_hf(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thinking", action="store_true", help="a <think> reasoning model")
    args = parser.parse_args()
    print(make_tiny_model(args.out_dir, args.seed, thinking=args.thinking))


if __name__ == "__main__":
    main()
