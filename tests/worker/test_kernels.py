"""worker.kernels (AMX int4 / int8 GEMM) against the weights it packed, dequantised in torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from worker import kernels

pytestmark = pytest.mark.skipif(
    not kernels.available(), reason="worker.kernels needs a CPU with AMX-BF16 and a C compiler"
)


def dequantised(packed: kernels.PackedWeight) -> torch.Tensor:
    """The fp32 weights [N, K] the kernel multiplies by, rebuilt from the packed layout."""
    n_pad, K = packed.padded_out, packed.in_features
    if packed.mode == "int8":
        q = packed.qweight.permute(0, 2, 1, 3).reshape(n_pad, K).float()
        return (q * packed.scales[:, None])[: packed.out_features]
    groups = K // kernels.GROUP
    q = packed.qweight  # [block, group, pair, lane]
    q = torch.stack([q & 0xF, q >> 4], dim=-1).permute(0, 3, 1, 2, 4).reshape(n_pad, K).float()
    sl = packed.scales.float()  # [block, group, 2, lane]
    scale = sl[:, :, 0].permute(0, 2, 1).reshape(n_pad, groups, 1)
    low = sl[:, :, 1].permute(0, 2, 1).reshape(n_pad, groups, 1)
    w = q.reshape(n_pad, groups, kernels.GROUP) * scale + low
    return w.reshape(n_pad, K)[: packed.out_features]


@pytest.mark.parametrize("mode", ["int4", "int8"])
@pytest.mark.parametrize(("n", "k"), [(16, 64), (100, 64), (960, 576), (576, 1536)])
def test_kernel_matches_its_dequantised_weights(mode: str, n: int, k: int) -> None:
    torch.manual_seed(n + k)
    w = torch.randn(n, k) * 0.05
    packed = kernels.pack_int4(w) if mode == "int4" else kernels.pack_int8(w)
    ref_w = dequantised(packed)
    # the grid is the weights' own: int4 within a step of each group, int8 within 1/127
    assert (ref_w - w).abs().max() <= (0.05 * 8 / (15 if mode == "int4" else 127))
    for rows in (1, 5, 16, 17, 32):
        x = torch.randn(rows, k).bfloat16()
        y = kernels.linear(x, packed)
        assert y.shape == (rows, n) and y.dtype == torch.bfloat16
        ref = x.float() @ ref_w.T
        # products exact, fp32 sums, one bf16 rounding of each weight and of the output
        assert (y.float() - ref).abs().max() <= 0.01 * ref.abs().max(), (mode, n, k, rows)


def test_more_rows_than_two_tiles_are_refused() -> None:
    packed = kernels.pack_int4(torch.randn(16, 64))
    with pytest.raises(ValueError, match="at most 32 rows"):
        kernels.linear(torch.randn(33, 64).bfloat16(), packed)


def test_torch_gemm_is_right_after_the_kernel_used_the_tiles() -> None:
    # oneDNN runs bf16 GEMMs on the same AMX tiles: the kernel must leave them released
    w = torch.randn(256, 576).bfloat16()
    kernels.linear(torch.randn(16, 576).bfloat16(), kernels.pack_int8(w))
    x = torch.randn(128, 576).bfloat16()
    ref = x.float() @ w.float().T
    assert (F.linear(x, w).float() - ref).abs().max() <= 0.01 * ref.abs().max()
