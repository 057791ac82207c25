"""RMSNorm (Llama form: normalise in fp32, scale in the model dtype).

Gemma's `1 + w` form is folded into the weight when it is loaded (worker/models/gemma3.py), as
llama.cpp's converter does, so one module serves every family.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worker import kernels
from worker.kernels.plan import NO_KERNELS, KernelPlan


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, plan: KernelPlan = NO_KERNELS) -> torch.Tensor:
        # Normalise in fp32 (bf16 variance loses precision), scale in the model dtype.
        if x.dtype == torch.float32:  # one fused kernel
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        if plan.rms_norm and x.shape[-1] % 16 == 0:
            return kernels.rms_norm(x, self.weight, self.eps)  # the same, in one pass
        xf = F.rms_norm(x.float(), self.weight.shape, None, self.eps)
        return self.weight * xf.to(x.dtype)
