"""The kernel decision is made once (KernelPlan.decide) and passed down: nothing below the
loader asks again. Spies on worker.kernels stand in for timing: which kernels a forward
calls is the mechanism under test."""

from __future__ import annotations

import pytest
import torch

from worker import kernels
from worker.kernels.plan import NO_KERNELS, KernelPlan
from worker.layers.quant import QuantLinear, quantize_model
from worker.model_runner import ModelRunner
from worker.models.llama import LlamaConfig, LlamaForCausalLM

KERNEL_CALLS = ("linear", "rope_write_kv", "decode_attention", "rms_norm", "silu_mul")


@pytest.fixture
def spied(monkeypatch) -> list[str]:
    """Every call into worker.kernels' compute functions fails the forward, by name."""
    calls: list[str] = []

    def refuse(name: str):
        def call(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"kernels.{name} called")

        return call

    for name in KERNEL_CALLS:
        monkeypatch.setattr(kernels, name, refuse(name))
    return calls


def _model() -> tuple[LlamaForCausalLM, LlamaConfig]:
    torch.manual_seed(0)
    config = LlamaConfig.tiny(num_attention_heads=6, num_key_value_heads=2, head_dim=16)
    return LlamaForCausalLM(config).bfloat16(), config


def test_a_plan_without_kernels_runs_only_torch_ops(spied) -> None:
    model, config = _model()
    model = quantize_model(model, "int4", plan=NO_KERNELS)
    runner = ModelRunner(
        model, config, max_num_seqs=2, max_model_len=32, dtype=torch.bfloat16, device="cpu",
        kernels=NO_KERNELS,
    )  # fmt: skip
    runner.prefill(0, [1, 2, 3])
    for rows in (1, 2):  # decode batches, through the int linears' torch path
        runner.decode(list(range(rows)), [4] * rows, [3] * rows)
    assert spied == []
    assert all(m.packed is None for m in model.modules() if isinstance(m, QuantLinear))


def test_decide_is_off_where_the_kernels_are_off(monkeypatch) -> None:
    config = LlamaConfig.tiny()
    monkeypatch.setattr(kernels, "available", lambda: False)  # LLMAAS_NATIVE_KERNELS=0, no CPU
    assert KernelPlan.decide(config, torch.bfloat16, "cpu") == NO_KERNELS
    monkeypatch.setattr(kernels, "available", lambda: True)
    monkeypatch.setattr(kernels, "amx", lambda: False)  # LLMAAS_NATIVE_AMX=0
    assert KernelPlan.decide(config, torch.float32, "cpu") == NO_KERNELS
    assert KernelPlan.decide(config, torch.bfloat16, "meta") == NO_KERNELS
    plan = KernelPlan.decide(config, torch.bfloat16, "cpu")
    assert plan == KernelPlan(linears=True, amx=False, attention=True, rms_norm=True, silu_mul=True)
    odd = LlamaConfig.tiny(hidden_size=72, num_attention_heads=4, intermediate_size=136)
    plan = KernelPlan.decide(odd, torch.bfloat16, "cpu")  # head_dim 18: attention unsupported
    assert (plan.attention, plan.rms_norm, plan.silu_mul) == (False, False, False)


@pytest.mark.skipif(not kernels.wanted(), reason="worker.kernels off here")
def test_the_runner_carries_its_plan_into_every_forward(monkeypatch) -> None:
    model, config = _model()
    plan = KernelPlan.decide(config, torch.bfloat16, "cpu")
    assert plan.attention and plan.rms_norm and plan.silu_mul
    runner = ModelRunner(
        model, config, max_num_seqs=2, max_model_len=32, dtype=torch.bfloat16, device="cpu",
        kernels=plan,
    )  # fmt: skip
    seen = []
    real = kernels.decode_attention
    monkeypatch.setattr(kernels, "decode_attention", lambda *a: seen.append(1) or real(*a))
    runner.prefill(0, [1, 2, 3])
    assert seen == []  # a prefill never runs the decode kernel
    runner.decode([0], [4], [3])
    assert len(seen) == config.num_hidden_layers
