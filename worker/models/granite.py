"""Granite 3.x dense and MoE: the Llama decoder with four multipliers (embedding, residual,
attention scale, logits divisor); the MoE variant routes each token to its top-k experts
(softmax over the top-k logits: normalised weights)."""

from __future__ import annotations

from typing import Any

import torch

from worker.models.experts import unstack_experts
from worker.models.llama_config import LlamaConfig


def config_from_hf(d: dict[str, Any], **family: Any) -> LlamaConfig:
    return LlamaConfig.from_hf_dict(
        d,
        embedding_multiplier=float(d.get("embedding_multiplier", 1.0)),
        residual_multiplier=float(d.get("residual_multiplier", 1.0)),
        attention_scale=float(d.get("attention_multiplier", 1.0)),  # transformers' default
        logits_scaling=float(d.get("logits_scaling", 1.0)),
        **family,
    )


def moe_config_from_hf(d: dict[str, Any]) -> LlamaConfig:
    if d.get("shared_intermediate_size"):
        raise ValueError("Granite MoE with shared experts (granitemoeshared) is not supported")
    return config_from_hf(
        d,
        num_experts=d["num_local_experts"],
        num_experts_per_tok=d["num_experts_per_tok"],
        moe_intermediate_size=d["intermediate_size"],
        norm_topk_prob=True,
    )


def moe_rename(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """block_sparse_moe.{input_linear [E, 2I, D] (gate then up), output_linear [E, D, I],
    router.layer} -> the shared decoder's experts and router."""
    out = unstack_experts(
        state,
        {
            "block_sparse_moe.input_linear": "gate_up_proj",
            "block_sparse_moe.output_linear": "down_proj",
        },
    )
    return {k.replace(".block_sparse_moe.router.layer.", ".mlp.router."): v for k, v in out.items()}
