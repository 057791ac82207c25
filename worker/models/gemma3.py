"""Gemma 3 text (Gemma3ForCausalLM, and the text part of Gemma3ForConditionalGeneration).

On the shared decoder: embeddings scaled by sqrt(hidden_size), GeGLU (tanh GELU), per-head
q/k norm, attention scale query_pre_attn_scalar^-0.5, interleaved sliding-window and global
layers, the sliding ones with their own rope base, optional final logit soft-capping. Its
own layer: a norm before and after both attention and MLP. Its RMSNorm scales by `1 + w`:
the 1 is added to the weights at load (as llama.cpp's converter writes them to GGUF).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from worker.layers.attention import Attention, AttnContext
from worker.layers.mlp import GatedMLP
from worker.layers.norm import RMSNorm
from worker.models.decoder import DecoderForCausalLM, Rope
from worker.models.llama_config import FULL, SLIDING, LlamaConfig

DEFAULT_PATTERN = 6  # every 6th layer global (transformers' and llama.cpp's default)


class Gemma3DecoderLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig, layer: int) -> None:
        super().__init__()
        self.self_attn = Attention(cfg, sliding=cfg.is_sliding(layer))
        self.mlp = GatedMLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act)
        d, eps = cfg.hidden_size, cfg.rms_norm_eps
        self.input_layernorm = RMSNorm(d, eps)
        self.post_attention_layernorm = RMSNorm(d, eps)
        self.pre_feedforward_layernorm = RMSNorm(d, eps)
        self.post_feedforward_layernorm = RMSNorm(d, eps)

    def forward(
        self, x: torch.Tensor, rope: Rope, kv: tuple[torch.Tensor, torch.Tensor], ctx: AttnContext
    ) -> torch.Tensor:
        plan = ctx.kernels
        h = self.self_attn(self.input_layernorm(x, plan), rope, kv, ctx)
        x = x + self.post_attention_layernorm(h, plan)
        h = self.mlp(self.pre_feedforward_layernorm(x, plan), plan)
        return x + self.post_feedforward_layernorm(h, plan)


class Gemma3ForCausalLM(DecoderForCausalLM):
    layer_class = Gemma3DecoderLayer


def config_from_hf(d: dict[str, Any]) -> LlamaConfig:
    if d.get("attn_logit_softcapping") is not None:
        raise ValueError("Gemma 3 with attn_logit_softcapping is not supported")
    if d.get("use_bidirectional_attention"):
        raise ValueError("Gemma 3 with bidirectional attention (an encoder) is not supported")
    n = d["num_hidden_layers"]
    pattern = d.get("sliding_window_pattern") or d.get("_sliding_window_pattern") or DEFAULT_PATTERN
    types = d.get("layer_types") or [SLIDING if (i + 1) % pattern else FULL for i in range(n)]
    params = d.get("rope_parameters") or {}
    if FULL in params:  # transformers 5: one rope per layer type
        full, local_theta = dict(params[FULL]), params.get(SLIDING, {}).get("rope_theta", 1e4)
    else:  # the published config.json: rope_theta, rope_scaling (global), rope_local_base_freq
        full = {"rope_theta": d.get("rope_theta", 1e6), **(d.get("rope_scaling") or {})}
        local_theta = d.get("rope_local_base_freq", 1e4)
    theta = full.pop("rope_theta", 1e6)
    flat = {**d, "rope_theta": theta, "rope_scaling": full or None, "rope_parameters": None}
    flat["layer_types"] = types
    return LlamaConfig.from_hf_dict(
        flat,
        hidden_act=d.get("hidden_activation") or d.get("hidden_act") or "gelu_pytorch_tanh",
        qk_norm=True,
        attention_scale=float(d.get("query_pre_attn_scalar", 256)) ** -0.5,
        embedding_multiplier=d["hidden_size"] ** 0.5,
        final_logit_softcapping=d.get("final_logit_softcapping"),
        rope_local_theta=float(local_theta),
        tie_word_embeddings=d.get("tie_word_embeddings", True),
    )


def rename(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Gemma's RMSNorm weights w -> 1 + w (in fp32), so the shared RMSNorm applies them."""
    return {k: v.float() + 1.0 if k.endswith("norm.weight") else v for k, v in state.items()}
