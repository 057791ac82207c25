"""Rotary position embeddings: inverse frequencies (default, linear, llama3, longrope / su) and
the cos / sin of a forward's positions.

Layout: rotate-half, as in Hugging Face checkpoints. `sin` comes back with its first half
negated, so `apply_rope` is one flip of the halves (3 kernels, not 6) and the native decode
kernel (`kernels.rope_write_kv`) takes the same tables.
"""

from __future__ import annotations

import math
from typing import Any

import torch

ROPE_TYPES = ("default", "linear", "llama3", "longrope")


def rope_kind(scaling: dict[str, Any] | None) -> str:
    kind = (scaling or {}).get("rope_type", (scaling or {}).get("type")) or "default"
    return "longrope" if kind == "su" else kind  # "su": Phi-3's first name for longrope


def default_inv_freq(head_dim: int, theta: float) -> torch.Tensor:
    # float64 on the CPU explicitly: the model may be constructed under torch.device("meta").
    exps = torch.arange(0, head_dim, 2, dtype=torch.float64, device="cpu") / head_dim
    return 1.0 / (theta**exps)


def llama3_scale(inv: torch.Tensor, rs: dict[str, Any]) -> torch.Tensor:
    # Long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old_len = rs["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old_len / lo, inv / factor, inv)
    smooth = (old_len / wavelen - lo) / (hi - lo)
    mid = (1 - smooth) * scaled / factor + smooth * scaled
    is_mid = (wavelen >= old_len / hi) & (wavelen <= old_len / lo)
    return torch.where(is_mid, mid, scaled)


class Rotary:
    """cos / sin tables for one rope configuration (not a module: nothing to load or move).

    longrope (Phi-3 / Phi-4): the short factors while the forward's furthest position is
    within `original_max_position_embeddings`, the long ones beyond, and cos / sin scaled by
    the attention factor, as transformers' Phi3 does (one choice per forward, from its
    furthest position: a batch past the original context uses the long factors in every row).
    """

    def __init__(
        self, head_dim: int, theta: float, scaling: dict[str, Any] | None, max_positions: int
    ) -> None:
        kind, rs = rope_kind(scaling), scaling or {}
        inv = default_inv_freq(head_dim, theta)
        self.long_inv: torch.Tensor | None = None
        self.long_from = 0  # kv_len beyond which long_inv applies
        self.attention_factor = 1.0
        if kind == "linear":
            inv = inv / rs["factor"]
        elif kind == "llama3":
            inv = llama3_scale(inv, rs)
        elif kind == "longrope":
            orig = rs["original_max_position_embeddings"]
            factor = rs.get("factor") or max_positions / orig
            attn = rs.get("attention_factor")
            if attn is None:
                attn = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
            self.attention_factor = float(attn)
            self.long_inv = (
                inv / torch.tensor(rs["long_factor"], dtype=torch.float64, device="cpu")
            ).float()
            self.long_from = orig
            inv = inv / torch.tensor(rs["short_factor"], dtype=torch.float64, device="cpu")
        elif kind != "default":
            raise ValueError(f"unsupported rope scaling {kind!r} (supported: {ROPE_TYPES})")
        self.inv = inv.float()

    def __call__(
        self, positions: torch.Tensor, dtype: torch.dtype, kv_len: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """positions [B, T] -> cos, sin [B, T, 1, hd]; angles in fp32 so large positions stay
        exact; kv_len: the forward's furthest position + 1 (longrope's choice)."""
        long = self.long_inv is not None and kv_len > self.long_from
        inv = (self.long_inv if long else self.inv).to(positions.device)
        freqs = positions.float()[..., None] * inv  # [B, T, hd/2]
        emb = torch.cat((freqs, freqs), dim=-1)[:, :, None, :]
        cos, sin = emb.cos(), emb.sin()
        sin[..., : inv.shape[0]].neg_()
        if self.attention_factor != 1.0:
            cos, sin = cos * self.attention_factor, sin * self.attention_factor
        return cos.to(dtype), sin.to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: [B, T, H, hd]; cos/sin: [B, T, 1, hd]: x * cos + cat(-x2, x1) * sin, with sin's first
    # half already negated (Rotary), so the rotation is one flip of the halves.
    B, T, H, hd = x.shape
    swapped = x.view(B, T, H, 2, hd // 2).flip(3).view(B, T, H, hd)  # cat(x2, x1)
    return x * cos + swapped * sin
