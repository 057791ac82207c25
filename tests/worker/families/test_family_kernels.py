"""The one kernel decision (KernelPlan.decide) per family: the native kernels apply where a
family fits them and are off, in that one place, where it does not."""

from __future__ import annotations

import pytest
import torch

from worker import kernels
from worker.kernels.plan import KernelPlan
from worker.models.llama_config import SLIDING, LlamaConfig


@pytest.fixture(autouse=True)
def cpu_with_kernels(monkeypatch) -> None:
    monkeypatch.setattr(kernels, "available", lambda: True)
    monkeypatch.setattr(kernels, "amx", lambda: False)


def plan(**family) -> KernelPlan:
    config = LlamaConfig.tiny(num_attention_heads=4, num_key_value_heads=2, **family)
    return KernelPlan.decide(config, torch.bfloat16, "cpu")


def test_llama_and_qwen3_get_every_kernel() -> None:
    for family in ({}, {"qk_norm": True}, {"num_experts": 4, "moe_intermediate_size": 32}):
        p = plan(**family)
        assert p.linears and p.attention and p.rms_norm and p.silu_mul, family


def test_another_attention_scale_or_a_sliding_window_keeps_decode_attention_on_torch() -> None:
    assert not plan(attention_scale=0.2).attention  # Granite, Gemma 3
    sliding = plan(sliding_window=8, layer_types=[SLIDING, SLIDING])  # Mistral v0.1, Gemma 3
    assert not sliding.attention and sliding.linears and sliding.rms_norm


def test_geglu_keeps_the_activation_on_torch() -> None:
    p = plan(hidden_act="gelu_pytorch_tanh")  # Gemma 3
    assert not p.silu_mul and p.linears and p.rms_norm
