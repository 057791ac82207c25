"""The per-architecture part of reading a GGUF (as llama.cpp's convert_hf_to_gguf.py writes
it): which family serves each `general.architecture`, the tensor names that differ from
Llama's, whether the converter permuted Q/K rows, and the config each architecture keeps in
metadata of its own (Granite's multipliers, experts, Gemma 3's layer pattern) or in tensors
(rope factors). worker/gguf_reader.py reads the file and the fields every family shares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.models.llama_config import FULL, SLIDING, LlamaConfig
from worker.models.registry import UnsupportedArchitecture

Get = Callable[..., Any]  # get(key, default): metadata `{arch}.{key}`

# general.architecture -> our family.
GGUF_FAMILIES = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "qwen3": "qwen3",
    "qwen3moe": "qwen3_moe",
    "granite": "granite",
    "granitemoe": "granitemoe",
    "gemma3": "gemma3",
    "phi3": "phi3",
}
# The converter's Llama path (LlamaModel and its subclasses: Mistral, Granite) permutes Q/K
# rows for llama.cpp's interleaved rope; the others keep Hugging Face's rotate-half rows.
PERMUTED_QK = frozenset({"llama", "mistral", "granite", "granitemoe"})

# GGUF tensor name (after `blk.N.`) -> HF name (after `model.layers.N.`).
GGUF_TO_HF = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "ffn_gate_inp": "mlp.router",  # MoE: the router's logits over experts
}
GGUF_TO_HF_BY_ARCH = {
    "gemma3": GGUF_TO_HF
    | {
        "ffn_norm": "pre_feedforward_layernorm",
        "post_attention_norm": "post_attention_layernorm",
        "post_ffw_norm": "post_feedforward_layernorm",
    },
    # Phi-3 keeps q/k/v and gate/up fused, the shared decoder's own layout (gate first).
    "phi3": GGUF_TO_HF | {"attn_qkv": "self_attn.qkv_proj", "ffn_up": "mlp.gate_up_proj"},
}
# Experts stacked in one 3-D tensor per layer [experts, out, in] -> one linear per expert.
GGUF_EXPERTS = {
    "ffn_gate_exps": "gate_proj",
    "ffn_up_exps": "up_proj",
    "ffn_down_exps": "down_proj",
}
GGUF_GLOBAL_TO_HF = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
# Global tensors that are config, not weights: Llama 3's rope frequency divisors (the
# converter bakes its scaling into them), Phi-3's longrope short and long factors.
ROPE_FACTOR_TENSORS = ("rope_freqs", "rope_factors_long", "rope_factors_short")
GEMMA3_27B_LAYERS = 62  # llama.cpp scales Gemma 3 27B's queries by hidden/heads, not head_dim


def check_supported(meta: dict[str, Any]) -> None:
    """A clear refusal, naming the architecture, of a file no family of ours reads."""
    arch = meta["general.architecture"]
    if arch not in GGUF_FAMILIES:
        raise UnsupportedArchitecture(
            f"unsupported GGUF architecture {arch!r}; supported: {', '.join(GGUF_FAMILIES)}"
        )
    # Granite MoE with shared experts (granitemoeshared) is written as granitemoe.
    if meta.get(f"{arch}.expert_shared_feed_forward_length"):
        raise UnsupportedArchitecture(f"GGUF architecture {arch!r} with shared experts")


def rope_scaling(
    get: Get, factors: dict[str, list[float]], max_positions: int
) -> dict[str, Any] | None:
    """The rope scaling as our Rotary reads it. Factor tensors divide each frequency:
    Phi-3's two tables are longrope's; Llama 3's one table is longrope with the same
    factors either side of the original context (and no attention factor)."""
    kind = get("rope.scaling.type")
    if "rope_factors_long" in factors:
        return {
            "rope_type": "longrope",
            "short_factor": factors["rope_factors_short"],
            "long_factor": factors["rope_factors_long"],
            "original_max_position_embeddings": int(get("rope.scaling.original_context_length")),
            "attention_factor": float(get("rope.scaling.attn_factor", 1.0)),
        }
    if "rope_freqs" in factors:
        if kind not in (None, "none"):
            raise ValueError(f"GGUF rope_freqs together with rope scaling {kind!r}")
        return {
            "rope_type": "longrope",
            "short_factor": factors["rope_freqs"],
            "long_factor": factors["rope_freqs"],
            "original_max_position_embeddings": max_positions,
            "attention_factor": 1.0,
        }
    if kind in (None, "none"):
        return None
    if kind != "linear":
        raise ValueError(f"unsupported GGUF rope scaling {kind!r}")
    return {"rope_type": "linear", "factor": float(get("rope.scaling.factor"))}


def apply_arch_config(arch: str, cfg: LlamaConfig, get: Get, tensor_names: set[str]) -> None:
    """What each architecture adds to the shared fields (gguf_reader.gguf_config)."""
    rope_dims = get("rope.dimension_count")
    if rope_dims is not None and int(rope_dims) != cfg.head_dim:
        raise UnsupportedArchitecture(
            f"GGUF architecture {arch!r} with partial rotary ({rope_dims} of {cfg.head_dim})"
        )
    if get("expert_count"):
        _experts(cfg, get, tensor_names)
    if arch in ("granite", "granitemoe"):
        _granite(cfg, get)
    if arch == "gemma3":
        _gemma3(cfg, get)
    elif get("attention.sliding_window"):  # Mistral v0.1, Phi-3 mini: every layer
        cfg.sliding_window = int(get("attention.sliding_window"))
        cfg.layer_types = [SLIDING] * cfg.num_hidden_layers


def _experts(cfg: LlamaConfig, get: Get, tensor_names: set[str]) -> None:
    """Sparse layers: those with a router (llama.cpp's qwen3moe and granitemoe route every
    layer; a dense one, as some writers keep, reads as a plain MLP). llama.cpp renormalises
    the top-k weights for both unless the file says otherwise."""
    cfg.num_experts = int(get("expert_count"))
    cfg.num_experts_per_tok = int(get("expert_used_count"))
    cfg.moe_intermediate_size = int(get("expert_feed_forward_length") or cfg.intermediate_size)
    cfg.norm_topk_prob = bool(get("expert_weights_norm", True))
    cfg.dense_layers = [
        i
        for i in range(cfg.num_hidden_layers)
        if f"blk.{i}.ffn_gate_inp.weight" not in tensor_names
    ]


def _granite(cfg: LlamaConfig, get: Get) -> None:
    """The converter writes Granite's multipliers as `*_scale` keys, each only when set."""
    cfg.embedding_multiplier = float(get("embedding_scale") or 1.0)
    cfg.residual_multiplier = float(get("residual_scale") or 1.0)
    cfg.attention_scale = float(get("attention.scale")) if get("attention.scale") else None
    cfg.logits_scaling = float(get("logit_scale") or 1.0)


def _gemma3(cfg: LlamaConfig, get: Get) -> None:
    """What llama.cpp's Gemma 3 reads or assumes: a global layer every 6 (unless the file
    says otherwise), sliding layers at rope base `freq_base_swa` (10000 when absent)."""
    n = cfg.num_hidden_layers
    pattern = get("attention.sliding_window_pattern")
    if isinstance(pattern, list):  # one flag per layer: True = sliding
        types = [SLIDING if p else FULL for p in pattern]
    else:
        every = int(pattern or 6)
        types = [SLIDING if (i + 1) % every else FULL for i in range(n)]
    scale_by = (
        cfg.hidden_size // cfg.num_attention_heads if n == GEMMA3_27B_LAYERS else cfg.head_dim
    )
    cfg.hidden_act = "gelu_pytorch_tanh"
    cfg.attention_scale = float(scale_by) ** -0.5
    cfg.embedding_multiplier = cfg.hidden_size**0.5
    cfg.final_logit_softcapping = get("final_logit_softcapping")
    cfg.sliding_window = get("attention.sliding_window")
    cfg.layer_types = types
    cfg.rope_local_theta = float(get("rope.freq_base_swa", 10000.0))
