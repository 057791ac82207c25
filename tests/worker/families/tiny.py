"""Tiny random-weight checkpoints of each family, written by transformers itself (config,
safetensors) with SmolLM2's tokenizer, and transformers' greedy reference on them."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers

from worker.loader import load_model, load_tokenizer
from worker.tokenizer import Tokenizer

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
PROMPT = "The quick brown fox jumps over the lazy dog near the river bank."
GREEDY_TOKENS = 32
SHAPES = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=16,
    max_position_embeddings=512,
    bos_token_id=1,
    eos_token_id=None,  # transformers' generate never stops early (the worker: ignore_eos)
    pad_token_id=0,
)
LONGROPE = {
    "rope_type": "longrope",
    "short_factor": [1.0, 1.1, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0],
    "long_factor": [1.0, 1.3, 1.8, 2.5, 4.0, 6.0, 9.0, 12.0],
}
# Phi-3's original context: transformers reads the top-level key (it overrides the rope
# dict's). "phi3" stays within it (the short factors throughout); "phi3_long" starts past it
# (the 14-token prompt: the long factors and the attention factor throughout). A run that
# crosses it mid-generation is not compared: transformers then recomputes the whole cache
# with the long factors, a serving engine (vLLM, this one) keeps the keys it has.
PHI3_SHORT = dict(rope_scaling=LONGROPE, max_position_embeddings=128)
PHI3_LONG = PHI3_SHORT | dict(original_max_position_embeddings=8)


@dataclass(frozen=True)
class Spec:
    model_type: str
    config: dict[str, Any] = field(default_factory=dict)
    moe_router: str | None = None  # HF module name of the router in each layer
    norm_center: float = 1.0  # RMSNorm weights around 1 (Gemma's `1 + w`: around 0)


SPECS = {
    "llama3": Spec(
        "llama",
        {
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 16,
            },
            "rope_theta": 500000.0,
        },
    ),
    "mistral": Spec("mistral", {"sliding_window": 12}),
    "qwen3": Spec("qwen3"),
    "qwen3_moe": Spec(
        "qwen3_moe",
        dict(
            num_experts=8,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            norm_topk_prob=True,
            mlp_only_layers=[1],
            num_hidden_layers=3,
        ),
        moe_router="mlp.gate",
    ),
    "granite": Spec(
        "granite",
        dict(
            embedding_multiplier=3.0,
            residual_multiplier=0.5,
            attention_multiplier=0.2,
            logits_scaling=1.5,
        ),
    ),
    "granitemoe": Spec(
        "granitemoe",
        dict(
            embedding_multiplier=3.0,
            residual_multiplier=0.5,
            attention_multiplier=0.2,
            logits_scaling=1.5,
            num_local_experts=8,
            num_experts_per_tok=2,
            intermediate_size=32,
        ),
        moe_router="block_sparse_moe.router",
    ),
    "gemma3": Spec(
        "gemma3_text",
        dict(
            num_hidden_layers=6,  # 5 sliding + 1 global, llama.cpp's fixed pattern
            sliding_window=8,
            query_pre_attn_scalar=16,  # = head_dim: what llama.cpp assumes below 27B
            final_logit_softcapping=10.0,
            rope_theta=100000.0,
            rope_local_base_freq=5000.0,
        ),
        norm_center=0.0,
    ),
    "phi3": Spec("phi3", PHI3_SHORT | dict(original_max_position_embeddings=64)),
    "phi3_long": Spec("phi3", PHI3_LONG),
}


def make_checkpoint(
    out: Path, name: str, seed: int = 0, changes: dict[str, Any] | None = None
) -> Path:
    """Writes family `name`'s tiny checkpoint into `out` (config, weights, tokenizer), its
    config updated by `changes` (a variant another format can hold)."""
    spec = SPECS[name]
    spec = dataclasses.replace(spec, config=spec.config | (changes or {}))
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    tokenizer.save_hf(out)
    config = transformers.AutoConfig.for_model(
        spec.model_type, vocab_size=tokenizer.vocab_size, **(SHAPES | spec.config)
    )
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith("norm.weight"):
                p.copy_(spec.norm_center + 0.1 * torch.randn_like(p))
            else:
                p.normal_(0.0, 0.08)  # big enough that greedy choices are clear
    model.save_pretrained(out)
    return out


@functools.cache
def _tokenizer() -> Tokenizer:
    # SmolLM2's, read from the bundled GGUF once (the slow part of writing a checkpoint).
    tokenizer = load_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def reference(path: Path) -> transformers.PreTrainedModel:
    return transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()


@torch.inference_mode()
def hf_greedy(
    model: transformers.PreTrainedModel, prompt: list[int], n: int
) -> tuple[list[int], torch.Tensor]:
    """transformers' greedy `generate`: the n new token ids and the logits that chose each
    one [n, vocab] (after the model's own scaling / soft-capping)."""
    out = model.generate(
        torch.tensor([prompt]),
        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
        do_sample=False,
        max_new_tokens=n,
        pad_token_id=0,
        output_logits=True,
        return_dict_in_generate=True,
    )
    return out.sequences[0, len(prompt) :].tolist(), torch.cat(out.logits).float()


class Family:
    """A family's checkpoint, transformers' model on it, ours in fp32, and the reference
    greedy run: prompt ids, GREEDY_TOKENS token ids, and the logits that chose them."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self.ref = reference(path)
        self.fp32 = load_model(str(path), dtype=torch.float32)
        self.prompt = self.fp32.tokenizer.encode(PROMPT)
        self.tokens, self.logits = hf_greedy(self.ref, self.prompt, GREEDY_TOKENS)
