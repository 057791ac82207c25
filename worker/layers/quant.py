"""Weight-only int8 / int4 linears for CPU decode (selected per model by `quantize_model`).

Why: a decode step is bound by bytes of weight read per step (268 MB in bf16 for
SmolLM2-135M). Three kernels, picked per call by the number of rows (tokens in the forward):
- a few rows: torch's `_weight_int4pack_mm_for_cpu` (int4, groups of 32 along K) /
  `_weight_int8pack_mm` (per-channel int8): they read 2-4x fewer bytes than bf16 but
  dequantise again for every few rows;
- up to 32 rows, on CPUs with AVX512-BF16: `worker.kernels` (dequantises once per call,
  then AMX tiles or VDPBF16PS): with AMX a batch-16 step's linears cost about what batch 1's
  do (~10 ms against ~25 ms in bf16); on AVX-512 alone they are compute-bound, 10-15 %
  faster than oneDNN's bf16 GEMM without AMX at 16 rows (the int8 lm_head: 1.5x);
- more rows (prefill): a GEMM on the dense weight, which each QuantLinear keeps
  (compute-bound there); the int copies cost ~70 MB (int4) / ~135 MB (int8) next to 268 MB of
  bf16. That GEMM runs in bf16, or in fp32 on a CPU where that measures faster (`dense_linear`).

Numerics: SmolLM2's GGUF stores its linears as Q4_1 (asymmetric, groups of 32), so the int4
grid here reproduces those weights up to the bf16 rounding of scale and zero.
"""

from __future__ import annotations

import functools
import logging
import time

import torch
import torch.nn.functional as F
from torch import nn

from worker import kernels
from worker.kernels.plan import NO_KERNELS, KernelPlan

log = logging.getLogger(__name__)

QUANT_MODES = ("none", "int8", "int4")
GROUP_SIZE = 32  # int4 group along K (the Q4_1 block size)
# Rows (tokens in the forward) up to which torch's int kernels beat bf16 GEMM: measured on
# the whole decode step at 1 and 2 threads (int4 wins at batch 8 by 10-20%, loses at 16).
MAX_QUANT_ROWS = 8
# With the native kernels, rows from which they beat torch's int kernels (decode step of
# SmolLM2-135M, 2 threads, ms: batch 4: 21.0 torch / 24.1 native; batch 8: 32.5 / 27.4).
NATIVE_FROM_ROWS = 6


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
    """y = x @ W.T (+ b): int kernels for up to 32 rows, dense `weight` GEMM for more."""

    def __init__(
        self,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        mode: str,
        max_rows: int | None = None,
        plan: KernelPlan = NO_KERNELS,
    ) -> None:
        """max_rows: rows up to which torch's int kernel runs (default: MAX_QUANT_ROWS, or
        NATIVE_FROM_ROWS - 1 with the native kernels); plan: the load's KernelPlan (its
        `linears`: worker.kernels above max_rows, on AMX tiles for its `amx`)."""
        super().__init__()
        if mode not in ("int8", "int4"):
            raise ValueError(f"QuantLinear mode must be int8 or int4, not {mode!r}")
        if mode == "int4" and weight.shape[1] % GROUP_SIZE:
            raise ValueError(f"int4 needs in_features divisible by {GROUP_SIZE}")
        native = plan.linears and weight.shape[1] % kernels.GROUP == 0  # the kernels' K limit
        if max_rows is None:
            max_rows = NATIVE_FROM_ROWS - 1 if native else MAX_QUANT_ROWS
        self.mode, self.max_rows, self.amx = mode, max_rows, plan.amx
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.weight = weight  # dense [N, K], shared with a tied embedding when there is one
        self.bias = bias
        self.packed: kernels.PackedWeight | None = None
        if native:
            self.packed = (kernels.pack_int4 if mode == "int4" else kernels.pack_int8)(weight)
        if max_rows:
            q, s = quantize_int8(weight) if mode == "int8" else quantize_int4(weight)
            self.register_buffer("qweight", q)
            self.register_buffer("qscales", s.to(weight.dtype))  # the kernels want x's dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x2 = x.reshape(-1, self.in_features)
        rows = x2.shape[0]
        if rows <= self.max_rows:
            y = self._torch_int(x2)
        elif self.packed is not None and rows <= kernels.MAX_ROWS:
            y = kernels.linear(x2, self.packed, use_amx=self.amx)
        else:
            return dense_linear(x, self.weight, self.bias)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features)

    def _torch_int(self, x2: torch.Tensor) -> torch.Tensor:
        if self.mode == "int8":
            return torch.ops.aten._weight_int8pack_mm(x2, self.qweight, self.qscales)
        return torch.ops.aten._weight_int4pack_mm_for_cpu(
            x2, self.qweight, GROUP_SIZE, self.qscales
        )

    def extra_repr(self) -> str:
        native = self.packed is not None
        return (
            f"{self.in_features}, {self.out_features}, mode={self.mode}, "
            f"max_rows={self.max_rows}, native={native}"
        )


def dense_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """F.linear for prefill-sized inputs, in bf16 or in fp32 (weights converted per call),
    whichever `_fp32_gemm_is_faster` measured faster on this CPU at load. With AMX, bf16 wins
    by 4.6x. Where oneDNN's bf16 GEMM has only AVX512-BF16 and that dot product is no faster
    than the fp32 FMAs (an Intel CPU without AMX tiles, e.g. a VM that does not grant them),
    fp32 wins: 16 prompts of 132 tokens prefill 1.47x faster (878 -> 1294 tok/s, SmolLM2, 2
    threads). A CPU whose bf16 dot product outruns its FMAs keeps bf16."""
    if weight.dtype == torch.bfloat16 and weight.device.type == "cpu" and _fp32_gemm_is_faster():
        b = None if bias is None else bias.float()
        return F.linear(x.float(), weight.float(), b).to(x.dtype)
    return F.linear(x, weight, bias)


# The probe's clock (a test swaps in a virtual one: the rule is tested without real timing).
_clock = time.perf_counter
# fp32 (with the conversions) must be this much faster than bf16 to be chosen.
FP32_MARGIN = 0.85


@functools.cache
def _fp32_gemm_is_faster() -> bool:
    """Times one prefill-shaped GEMM (512 x 576 x 1536) both ways on the calling thread (the
    engine's, whose OpenMP pool runs the real ones), alternating, best of 5 each so a busy
    moment hits both; fp32 must win by 15 % to be chosen."""
    x, w = torch.randn(512, 576).bfloat16(), torch.randn(1536, 576).bfloat16()
    ways = {"bf16": lambda: F.linear(x, w), "fp32": lambda: F.linear(x.float(), w.float())}
    best = dict.fromkeys(ways, float("inf"))
    for fn in ways.values():
        fn()  # warm-up: oneDNN picks and caches its kernel on the first call
    for _ in range(5):
        for name, fn in ways.items():
            start = _clock()
            fn()
            best[name] = min(best[name], _clock() - start)
    faster = best["fp32"] < FP32_MARGIN * best["bf16"]
    log.info(
        "prefill GEMM in %s (512x576x1536: bf16 %.2f ms, fp32 with conversion %.2f ms)",
        "fp32" if faster else "bf16",
        best["bf16"] * 1e3,
        best["fp32"] * 1e3,
    )
    return faster


def quantize_model(
    model: nn.Module,
    mode: str,
    *,
    head_mode: str = "int8",
    max_rows: int | None = None,
    plan: KernelPlan | None = None,
) -> nn.Module:
    """Swaps every nn.Linear for a QuantLinear in place. The lm_head uses `head_mode` (int8:
    its tied embedding is Q8_0 in the GGUF, and int4 costs it more quality than it saves time).
    plan: the load's KernelPlan (None: decided here from the model's config, dtype and device).

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
    if plan is None:
        plan = KernelPlan.decide(model.config, next(model.parameters()).dtype, device)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                m = head_mode if name == "lm_head" else mode
                setattr(parent, name, QuantLinear(child.weight, child.bias, m, max_rows, plan))
    if next(model.parameters()).dtype == torch.bfloat16:
        _fp32_gemm_is_faster()  # measured now, at load, not during the first request
    return model
