"""Self-attention over the slot KV cache, shared by every family.

q/k/v are one fused linear (`qkv_proj`); optional per-head q/k RMSNorm (Qwen3, Gemma 3); a
scale other than 1/sqrt(head_dim) (Granite's attention_multiplier, Gemma's
query_pre_attn_scalar); a sliding window arrives as the mask of the AttnContext the model
hands a sliding layer (worker/models/decoder.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from worker import kernels
from worker.kernels.plan import NO_KERNELS, KernelPlan
from worker.layers.norm import RMSNorm
from worker.layers.rope import apply_rope
from worker.models.llama_config import LlamaConfig


@dataclass
class AttnContext:
    """Where this forward reads and writes the KV cache (passed explicitly, never global).

    slot_ids: [B] cache slot of each row; positions: [B, T] absolute position of each token;
    slot_index: `slot_ids` or an equivalent slice (a slice reads the cache without a copy);
    kv_len: keys 0..kv_len-1 are attended (the max position in the batch + 1);
    mask: [B, 1, T, kv_len], bool (True = attend) or additive float in the model dtype (built
    once per forward, so SDPA does not convert it in every layer); None with is_causal for a
    fresh prefill.
    write_rows: (batch index [N], token index [N]) of the tokens whose KV is written, for a
    padded batch (prefill_batch); None: every token of every row.
    kernels: which layers run on worker.kernels (decided once at load, see KernelPlan).
    kernel_decode: set for a decode step (one token per row) whose attention runs on
    worker.kernels (then `mask` is unused); None: torch's SDPA.
    """

    slot_ids: torch.Tensor
    positions: torch.Tensor
    slot_index: torch.Tensor | slice
    kv_len: int
    mask: torch.Tensor | None
    is_causal: bool = False
    write_rows: tuple[torch.Tensor, torch.Tensor] | None = None
    kernels: KernelPlan = NO_KERNELS
    kernel_decode: KernelDecode | None = None


@dataclass(slots=True)
class KernelDecode:
    """A decode step's attention on worker.kernels: lengths int64 [B] (positions + 1) and
    scratch, fp32 working memory for its scores (allocated once by the runner)."""

    lengths: torch.Tensor
    scratch: torch.Tensor


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig, sliding: bool = False) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.hd = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        )
        self.sliding = sliding  # read by the model: which mask and rope this layer gets
        self.scale = cfg.attention_scale  # None: SDPA's 1/sqrt(head_dim)
        qkv_out = (self.n_heads + 2 * self.n_kv) * self.hd
        self.qkv_proj = nn.Linear(cfg.hidden_size, qkv_out, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(
            self.n_heads * self.hd, cfg.hidden_size, bias=cfg.attention_out_bias
        )
        self.q_norm = RMSNorm(self.hd, cfg.rms_norm_eps) if cfg.qk_norm else None
        self.k_norm = RMSNorm(self.hd, cfg.rms_norm_eps) if cfg.qk_norm else None

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        kv: tuple[torch.Tensor, torch.Tensor],
        ctx: AttnContext,
    ) -> torch.Tensor:
        B, T, _ = x.shape  # x: [B, T, D]
        qkv = self.qkv_proj(x)
        if self.q_norm is not None:
            qkv = self._norm_qk(qkv, ctx.kernels)
        if (native := ctx.kernel_decode) is not None:  # two kernel calls instead of ~12 ops
            cos, sin = (t.view(B, self.hd) for t in rope)
            q = kernels.rope_write_kv(
                qkv.view(B, -1), cos, sin, kv, ctx.slot_ids, ctx.positions, self.n_heads, self.n_kv
            )
            out = kernels.decode_attention(
                q, kv, ctx.slot_ids, native.lengths, self.n_kv, native.scratch
            )
            return self.o_proj(out.view(B, 1, self.n_heads * self.hd))
        qk, v = qkv.split([(self.n_heads + self.n_kv) * self.hd, self.n_kv * self.hd], -1)
        # q and k heads are adjacent in the fused output: rotate all of them in one go.
        qk = apply_rope(qk.view(B, T, self.n_heads + self.n_kv, self.hd), *rope)
        q, k = qk.split([self.n_heads, self.n_kv], dim=2)
        v = v.view(B, T, self.n_kv, self.hd)
        self._write_kv(k, v, kv, ctx)
        k_cache, v_cache = kv  # [slots, n_kv, max_len, hd]
        keys = k_cache[ctx.slot_index, :, : ctx.kv_len]  # [B, n_kv, L, hd]
        values = v_cache[ctx.slot_index, :, : ctx.kv_len]
        if T == 1:
            # Decode: the G = H / n_kv query heads sharing a KV head become that head's G
            # "query positions" (one mask row fits all), so each K/V row is read once, not G
            # times as with enable_gqa: reading the cache is most of a decode step's attention.
            group = self.n_heads // self.n_kv
            out = F.scaled_dot_product_attention(
                q.reshape(B, self.n_kv, group, self.hd),
                keys,
                values,
                attn_mask=ctx.mask,
                scale=self.scale,
            )  # [B, n_kv, G, hd]: query head h = kv head h // G, as enable_gqa pairs them
            return self.o_proj(out.reshape(B, 1, self.n_heads * self.hd))
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            keys,
            values,
            attn_mask=ctx.mask,
            is_causal=ctx.is_causal,
            scale=self.scale,
            enable_gqa=self.n_kv != self.n_heads,
        )  # [B, H, T, hd]
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.hd))

    def _norm_qk(self, qkv: torch.Tensor, plan: KernelPlan) -> torch.Tensor:
        # Per-head RMSNorm of q and k before the rotation; the fused layout is kept (the
        # native decode kernel reads q, k, v from one row).
        *lead, _ = qkv.shape
        q, k, v = qkv.split([self.n_heads * self.hd, self.n_kv * self.hd, self.n_kv * self.hd], -1)
        q = self.q_norm(q.reshape(*lead, self.n_heads, self.hd), plan).flatten(-2)
        k = self.k_norm(k.reshape(*lead, self.n_kv, self.hd), plan).flatten(-2)
        return torch.cat((q, k, v), dim=-1)

    @staticmethod
    def _write_kv(
        k: torch.Tensor, v: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], ctx: AttnContext
    ) -> None:
        # k, v: [B, T, n_kv, hd]. One scatter per tensor: cache[slot[b], :, pos[b, t]] = k[b, t]
        k_cache, v_cache = kv
        if ctx.write_rows is None:
            k_cache[ctx.slot_ids[:, None], :, ctx.positions] = k
            v_cache[ctx.slot_ids[:, None], :, ctx.positions] = v
            return
        b, t = ctx.write_rows  # only the real (unpadded) tokens: [N] each
        k_cache[ctx.slot_ids[b], :, ctx.positions[b, t]] = k[b, t]
        v_cache[ctx.slot_ids[b], :, ctx.positions[b, t]] = v[b, t]
