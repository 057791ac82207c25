"""quant.dense_linear: the prefill GEMM runs in bf16 or fp32, whichever the probe measured
faster on this CPU, and both give the same answer up to bf16 rounding."""

from __future__ import annotations

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


class _VirtualClock:
    """The probe's clock: it advances only by what each GEMM "costs" (no real timing)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _probe_with_costs(monkeypatch, bf16_s: float, fp32_s: float, noise=None) -> bool:
    """Runs the probe with GEMMs that cost the given virtual seconds (plus `noise(i)` on the
    i-th call of either way, e.g. a busy moment)."""
    clock, real, calls = _VirtualClock(), F.linear, []

    def linear(x, w, b=None):
        calls.append(x.dtype)
        cost = fp32_s if x.dtype == torch.float32 else bf16_s
        clock.now += cost + (noise(len(calls)) if noise else 0.0)
        return real(x, w, b)

    monkeypatch.setattr(quant, "_clock", clock)
    monkeypatch.setattr(F, "linear", linear)
    faster = quant._fp32_gemm_is_faster()
    assert calls.count(torch.float32) == calls.count(torch.bfloat16) == 6  # warm-up + 5 each
    return faster


@pytest.mark.parametrize("slow", ["bf16", "fp32"])
def test_the_probe_picks_the_faster_way(monkeypatch, fresh_probe, slow: str) -> None:
    bf16_s, fp32_s = (0.004, 0.001) if slow == "bf16" else (0.001, 0.004)
    assert _probe_with_costs(monkeypatch, bf16_s, fp32_s) == (slow == "bf16")


def test_fp32_must_win_by_the_margin(monkeypatch, fresh_probe) -> None:
    # 10 % faster is not enough (the conversions and noise), 20 % is
    assert not _probe_with_costs(monkeypatch, 0.010, 0.009)
    quant._fp32_gemm_is_faster.cache_clear()
    assert _probe_with_costs(monkeypatch, 0.010, 0.008)


def test_a_busy_moment_does_not_decide(monkeypatch, fresh_probe) -> None:
    # every other call is slowed a lot (another process): the best of 5 of each way still
    # shows bf16 is faster
    slowed = lambda i: 0.050 if i % 4 in (1, 2) else 0.0  # noqa: E731
    assert not _probe_with_costs(monkeypatch, 0.002, 0.004, noise=slowed)


def test_quant_linear_takes_the_chosen_way_beyond_the_int_kernels(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(
        quant, "dense_linear", lambda x, w, b: calls.append(x.shape) or F.linear(x, w, b)
    )
    lin = quant.QuantLinear(torch.randn(96, 64).bfloat16(), None, "int4", max_rows=4)
    lin(torch.randn(1, 33, 64).bfloat16())
    assert calls == [(1, 33, 64)]
