"""Phi-3 / Phi-4 (Phi3ForCausalLM): the Llama decoder with q/k/v and gate/up already fused
in the checkpoint (the shared decoder's own layout: no packing) and longrope ("su") scaling,
short and long factors (worker/layers/rope.py)."""

from __future__ import annotations

from typing import Any

from worker.models.llama_config import LlamaConfig


def config_from_hf(d: dict[str, Any]) -> LlamaConfig:
    rope = dict(d.get("rope_scaling") or d.get("rope_parameters") or {})
    partial = rope.get("partial_rotary_factor", d.get("partial_rotary_factor", 1.0))
    if partial != 1.0:
        raise ValueError(f"Phi-3 with partial_rotary_factor {partial} is not supported")
    rope.pop("partial_rotary_factor", None)
    if rope.get("rope_type", rope.get("type")) in ("longrope", "su"):
        # Phi-3's config keeps the original context at the top level.
        rope.setdefault("original_max_position_embeddings", d["original_max_position_embeddings"])
    return LlamaConfig.from_hf_dict({**d, "rope_scaling": rope or None, "rope_parameters": None})
