"""Weight-only int8 / int4 linears for CPU decode (selected per model by `quantize_model`).

Why: a batch-1 decode step is bound by bytes of weight read per token (268 MB in bf16 for
SmolLM2-135M). torch's CPU kernels `_weight_int8pack_mm` (per-channel int8) and
`_weight_int4pack_mm_for_cpu` (int4, groups of 32 along K) read 2-4x fewer bytes and win
for a few rows. For many rows (prefill, big decode batches) the oneDNN bf16 GEMM
(AVX512-BF16) is ~2x faster than either int kernel (they dequantise per call), so each
QuantLinear keeps the dense weight too and picks by the number of rows: the int copy costs
~70 MB (int4) / ~135 MB (int8) next to 268 MB of bf16.

Numerics: SmolLM2's GGUF stores its linears as Q4_1 (asymmetric, groups of 32), so the int4
grid here reproduces those weights up to the bf16 rounding of scale and zero.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

QUANT_MODES = ("none", "int8", "int4")
GROUP_SIZE = 32  # int4 group along K (the Q4_1 block size)
# Rows (tokens in the forward) up to which the int kernels beat bf16 GEMM: measured on the
# whole decode step at 1 and 2 threads (int4 wins at batch 8 by 10-20%, loses at 16).
MAX_QUANT_ROWS = 8


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] -> (int8 [N, K], fp32 scales [N]): symmetric per output channel."""
    wf = w.float()
    scales = wf.abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.round(wf / scales[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scales


def quantize_int4(
    w: torch.Tensor, group_size: int = GROUP_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """w [N, K] -> (packed uint8 [N, K/2], fp32 scales_and_zeros [K/gs, N, 2]).

    Asymmetric per group: q = round((w - min) / scale) in 0..15; the kernel computes
    w = (q - 8) * scale + zero, so zero = min + 8 * scale.
    """
    N, K = w.shape
    g = w.float().reshape(N, K // group_size, group_size)
    lo, hi = g.amin(dim=-1), g.amax(dim=-1)
    scale = ((hi - lo) / 15.0).clamp(min=1e-8)
    q = torch.round((g - lo[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32)
    packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(q.reshape(N, K), 1)
    zero = lo + 8.0 * scale
    return packed, torch.stack([scale, zero], dim=-1).transpose(0, 1).contiguous()


class QuantLinear(nn.Module):
    """y = x @ W.T (+ b): int kernel for <= max_rows rows, dense `weight` GEMM otherwise."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        mode: str,
        max_rows: int = MAX_QUANT_ROWS,
    ) -> None:
        super().__init__()
        if mode not in ("int8", "int4"):
            raise ValueError(f"QuantLinear mode must be int8 or int4, not {mode!r}")
        if mode == "int4" and weight.shape[1] % GROUP_SIZE:
            raise ValueError(f"int4 needs in_features divisible by {GROUP_SIZE}")
        self.mode, self.max_rows = mode, max_rows
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.weight = weight  # dense [N, K], shared with a tied embedding when there is one
        self.bias = bias
        q, s = quantize_int8(weight) if mode == "int8" else quantize_int4(weight)
        self.register_buffer("qweight", q)
        self.register_buffer("qscales", s.to(weight.dtype))  # the kernels want x's dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        if x2.shape[0] > self.max_rows:
            return F.linear(x, self.weight, self.bias)
        if self.mode == "int8":
            y = torch.ops.aten._weight_int8pack_mm(x2, self.qweight, self.qscales)
        else:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(
                x2, self.qweight, GROUP_SIZE, self.qscales
            )
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"{self.in_features}, {self.out_features}, mode={self.mode}, max_rows={self.max_rows}"
        )


def quantize_model(
    model: nn.Module, mode: str, *, head_mode: str = "int8", max_rows: int = MAX_QUANT_ROWS
) -> nn.Module:
    """Swaps every nn.Linear for a QuantLinear in place. The lm_head uses `head_mode` (int8:
    its tied embedding is Q8_0 in the GGUF, and int4 costs it more quality than it saves time).

    CPU only: on other devices (CUDA, MPS) the model stays dense, logged once.
    """
    if mode not in QUANT_MODES:
        raise ValueError(f"quant must be one of {QUANT_MODES}, not {mode!r}")
    if mode == "none":
        return model
    device = next(model.parameters()).device
    if device.type != "cpu":
        log.info(
            "quant=%s: the int kernels are CPU-only; keeping dense weights on %s", mode, device
        )
        return model
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                m = head_mode if name == "lm_head" else mode
                setattr(parent, name, QuantLinear(child.weight, child.bias, m, max_rows))
    return model
