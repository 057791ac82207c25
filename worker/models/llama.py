"""Llama family (Llama 2/3.x, Mistral, Qwen2, SmolLM): the shared decoder as it is.

Kept as the import point of the Llama names the rest of the worker and its tools use
(`LlamaForCausalLM`, `AttnContext`, `hf_to_internal`, ...); the layers live in worker/layers.
"""

from __future__ import annotations

from typing import Any

from worker.layers.attention import AttnContext, KernelDecode
from worker.layers.rope import apply_rope
from worker.models.decoder import (
    PACKED_MODULES,
    DecoderForCausalLM,
    hf_to_internal,
    internal_to_hf,
)
from worker.models.llama_config import LlamaConfig

__all__ = [
    "PACKED_MODULES",
    "AttnContext",
    "KernelDecode",
    "LlamaConfig",
    "LlamaForCausalLM",
    "apply_rope",
    "config_from_hf",
    "hf_to_internal",
    "internal_to_hf",
]


class LlamaForCausalLM(DecoderForCausalLM):
    pass


def config_from_hf(d: dict[str, Any]) -> LlamaConfig:
    return LlamaConfig.from_hf_dict(d)
