"""Feed-forward blocks: the gated MLP (SwiGLU, or GeGLU with tanh-approximated GELU) and the
sparse mixture of experts (top-k routing, Qwen3-MoE and Granite MoE).

Experts are gated MLPs of their own, so `quantize_model` turns their linears into int ones
like any other; the router is a bare weight (not an nn.Linear), so it is never quantised and
picks the experts the reference picks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worker import kernels
from worker.kernels.plan import NO_KERNELS, KernelPlan
from worker.models.llama_config import LlamaConfig

ACTIVATIONS = ("silu", "gelu_pytorch_tanh")


class GatedMLP(nn.Module):
    def __init__(self, hidden: int, intermediate: int, act: str = "silu", bias: bool = False):
        super().__init__()
        if act not in ACTIVATIONS:
            raise ValueError(f"unsupported activation {act!r} (supported: {ACTIVATIONS})")
        self.act = act
        self.gate_up_proj = nn.Linear(hidden, 2 * intermediate, bias=bias)
        self.down_proj = nn.Linear(intermediate, hidden, bias=bias)

    def forward(self, x: torch.Tensor, plan: KernelPlan = NO_KERNELS) -> torch.Tensor:
        gate_up = self.gate_up_proj(x)
        if self.act == "silu" and plan.silu_mul and gate_up.shape[-1] % 32 == 0:
            return self.down_proj(kernels.silu_mul(gate_up))  # the same, in one pass
        gate, up = gate_up.chunk(2, dim=-1)
        if self.act == "silu":
            return self.down_proj(F.silu(gate) * up)
        return self.down_proj(F.gelu(gate, approximate="tanh") * up)


class Router(nn.Module):
    """Top-k of the softmax over experts; `normalize`: the k weights rescaled to sum to 1
    (Qwen3-MoE's norm_topk_prob; Granite's softmax over the top-k logits is the same)."""

    def __init__(self, hidden: int, num_experts: int, top_k: int, normalize: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_experts, hidden))
        self.top_k, self.normalize = top_k, normalize

    def forward(self, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x2 [N, D] -> (weights [N, k] in x's dtype, expert ids [N, k])."""
        probs = F.softmax(F.linear(x2, self.weight), dim=-1, dtype=torch.float32)
        weights, experts = probs.topk(self.top_k, dim=-1)
        if self.normalize:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights.to(x2.dtype), experts


class SparseMoE(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.router = Router(
            cfg.hidden_size, cfg.num_experts, cfg.num_experts_per_tok, cfg.norm_topk_prob
        )
        self.experts = nn.ModuleList(
            GatedMLP(cfg.hidden_size, cfg.moe_intermediate_size, cfg.hidden_act)
            for _ in range(cfg.num_experts)
        )

    def forward(self, x: torch.Tensor, plan: KernelPlan = NO_KERNELS) -> torch.Tensor:
        x2 = x.reshape(-1, x.shape[-1])
        weights, experts = self.router(x2)
        out = torch.zeros_like(x2)
        # Each expert runs once, on the rows routed to it (one host sync for the ids).
        for e in experts.unique().tolist():
            rows, k = (experts == e).nonzero(as_tuple=True)
            y = self.experts[e](x2[rows], plan) * weights[rows, k, None]
            out.index_add_(0, rows, y)
        return out.view_as(x)
