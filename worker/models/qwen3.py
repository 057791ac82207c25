"""Qwen3 dense (per-head q/k RMSNorm before the rotation) and Qwen3-MoE (sparse experts,
top-k routing, `norm_topk_prob`), on the shared decoder."""

from __future__ import annotations

from typing import Any

import torch

from worker.models.experts import unstack_experts
from worker.models.llama_config import LlamaConfig


def config_from_hf(d: dict[str, Any]) -> LlamaConfig:
    return LlamaConfig.from_hf_dict(d, qk_norm=True)


def moe_config_from_hf(d: dict[str, Any]) -> LlamaConfig:
    # transformers: layer i is sparse unless listed in mlp_only_layers or off the
    # decoder_sparse_step grid.
    n, step = d["num_hidden_layers"], d.get("decoder_sparse_step", 1)
    only = set(d.get("mlp_only_layers") or [])
    return LlamaConfig.from_hf_dict(
        d,
        qk_norm=True,
        num_experts=d.get("num_experts") or d["num_local_experts"],
        num_experts_per_tok=d["num_experts_per_tok"],
        moe_intermediate_size=d["moe_intermediate_size"],
        norm_topk_prob=d.get("norm_topk_prob", False),
        dense_layers=[i for i in range(n) if i in only or (i + 1) % step],
    )


def moe_rename(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Qwen3-MoE names -> the shared decoder's: the router is `mlp.gate`; experts come one
    module each (mlp.experts.E.gate_proj...) or, as transformers 5 may save them, stacked."""
    out = unstack_experts(
        state, {"mlp.experts.gate_up_proj": "gate_up_proj", "mlp.experts.down_proj": "down_proj"}
    )
    return {k.replace(".mlp.gate.weight", ".mlp.router.weight"): v for k, v in out.items()}
