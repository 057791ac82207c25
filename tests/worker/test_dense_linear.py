"""quant.dense_linear: the prefill GEMM runs in bf16 or fp32, whichever the probe measured
faster on this CPU, and both give the same answer up to bf16 rounding."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F

from worker.layers import quant


@pytest.fixture
def fresh_probe():
    quant._fp32_gemm_is_faster.cache_clear()
    yield
    quant._fp32_gemm_is_faster.cache_clear()


@pytest.mark.parametrize("fp32", [False, True])
def test_both_ways_compute_the_same_linear(monkeypatch, fp32: bool) -> None:
    monkeypatch.setattr(quant, "_fp32_gemm_is_faster", lambda: fp32)
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 40, 64).bfloat16(), torch.randn(96, 64).bfloat16(), torch.randn(96)
    y = quant.dense_linear(x, w, b.bfloat16())
    ref = x.float() @ w.float().T + b.bfloat16().float()
    assert y.dtype == torch.bfloat16 and y.shape == (2, 40, 96)
    assert (y.float() - ref).abs().max() <= 0.02 * ref.abs().max()


@pytest.mark.parametrize("slow", ["bf16", "fp32"])
def test_the_probe_picks_the_faster_way(monkeypatch, fresh_probe, slow: str) -> None:
    real = F.linear

    def linear(x, w, b=None):
        if (x.dtype == torch.float32) == (slow == "fp32"):
            time.sleep(0.004)
        return real(x, w, b)

    monkeypatch.setattr(F, "linear", linear)
    assert quant._fp32_gemm_is_faster() == (slow == "bf16")


def test_quant_linear_takes_the_chosen_way_beyond_the_int_kernels(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(
        quant, "dense_linear", lambda x, w, b: calls.append(x.shape) or F.linear(x, w, b)
    )
    lin = quant.QuantLinear(torch.randn(96, 64).bfloat16(), None, "int4", max_rows=4)
    lin(torch.randn(1, 33, 64).bfloat16())
    assert calls == [(1, 33, 64)]
