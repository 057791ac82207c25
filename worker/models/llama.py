"""Llama-family decoder (Llama, Mistral, Qwen2, SmolLM) in plain torch, attending over a KV cache.

q/k/v and gate/up are fused into one linear each (one matmul instead of three or two).
`PACKED_MODULES` maps the Hugging Face names onto the fused weights; `hf_to_internal` and
`internal_to_hf` are the only places that know about it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from worker import kernels
from worker.kernels.plan import NO_KERNELS, KernelPlan
from worker.models.llama_config import LlamaConfig

__all__ = ["AttnContext", "KernelDecode", "LlamaConfig", "LlamaForCausalLM"]

# Hugging Face projection name -> (fused internal name, shard index).
PACKED_MODULES = {
    "q_proj": ("qkv_proj", 0),
    "k_proj": ("qkv_proj", 1),
    "v_proj": ("qkv_proj", 2),
    "gate_proj": ("gate_up_proj", 0),
    "up_proj": ("gate_up_proj", 1),
}


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


def rope_inv_freq(cfg: LlamaConfig) -> torch.Tensor:
    """Inverse frequencies [head_dim // 2], with llama3 / linear scaling applied."""
    hd = cfg.head_dim
    # device="cpu" explicitly: the model may be constructed under torch.device("meta").
    exps = torch.arange(0, hd, 2, dtype=torch.float64, device="cpu") / hd
    inv = 1.0 / (cfg.rope_theta**exps)
    rs = cfg.rope_scaling or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "linear":
        inv = inv / rs["factor"]
    elif kind == "llama3":
        inv = _llama3_scale(inv, rs)
    elif kind not in (None, "default"):
        raise ValueError(f"unsupported rope_scaling type {kind!r}")
    return inv.float()


def _llama3_scale(inv: torch.Tensor, rs: dict[str, Any]) -> torch.Tensor:
    # Long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    old_len = rs["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    scaled = torch.where(wavelen > old_len / lo, inv / factor, inv)
    smooth = (old_len / wavelen - lo) / (hi - lo)
    mid = (1 - smooth) * scaled / factor + smooth * scaled
    is_mid = (wavelen >= old_len / hi) & (wavelen <= old_len / lo)
    return torch.where(is_mid, mid, scaled)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: [B, T, H, hd]; cos/sin: [B, T, 1, hd]; rotate-half layout, as in HF checkpoints:
    # x * cos + cat(-x2, x1) * sin. `sin` arrives with its first half negated (see
    # LlamaForCausalLM.rope), so the rotation is one flip of the halves: 3 kernels, not 6.
    B, T, H, hd = x.shape
    swapped = x.view(B, T, H, 2, hd // 2).flip(3).view(B, T, H, hd)  # cat(x2, x1)
    return x * cos + swapped * sin


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, plan: KernelPlan = NO_KERNELS) -> torch.Tensor:
        # Normalise in fp32 (bf16 variance loses precision), scale in the model dtype.
        if x.dtype == torch.float32:  # one fused kernel
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)
        if plan.rms_norm:
            return kernels.rms_norm(x, self.weight, self.eps)  # the same, in one pass
        xf = F.rms_norm(x.float(), self.weight.shape, None, self.eps)
        return self.weight * xf.to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv, self.hd = (
            cfg.num_attention_heads,
            cfg.num_key_value_heads,
            cfg.head_dim,
        )
        qkv_out = (self.n_heads + 2 * self.n_kv) * self.hd
        self.qkv_proj = nn.Linear(cfg.hidden_size, qkv_out, bias=cfg.attention_bias)
        self.o_proj = nn.Linear(
            self.n_heads * self.hd, cfg.hidden_size, bias=cfg.attention_out_bias
        )

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        kv: tuple[torch.Tensor, torch.Tensor],
        ctx: AttnContext,
    ) -> torch.Tensor:
        B, T, _ = x.shape  # x: [B, T, D]
        if (native := ctx.kernel_decode) is not None:  # two kernel calls instead of ~12 ops
            qkv = self.qkv_proj(x).view(B, -1)
            cos, sin = (t.view(B, self.hd) for t in rope)
            q = kernels.rope_write_kv(
                qkv, cos, sin, kv, ctx.slot_ids, ctx.positions, self.n_heads, self.n_kv
            )
            out = kernels.decode_attention(
                q, kv, ctx.slot_ids, native.lengths, self.n_kv, native.scratch
            )
            return self.o_proj(out.view(B, 1, self.n_heads * self.hd))
        qk, v = self.qkv_proj(x).split(
            [(self.n_heads + self.n_kv) * self.hd, self.n_kv * self.hd], -1
        )
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
                q.reshape(B, self.n_kv, group, self.hd), keys, values, attn_mask=ctx.mask
            )  # [B, n_kv, G, hd]: query head h = kv head h // G, as enable_gqa pairs them
            return self.o_proj(out.reshape(B, 1, self.n_heads * self.hd))
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            keys,
            values,
            attn_mask=ctx.mask,
            is_causal=ctx.is_causal,
            enable_gqa=self.n_kv != self.n_heads,
        )  # [B, H, T, hd]
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.n_heads * self.hd))

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


class MLP(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.gate_up_proj = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor, plan: KernelPlan = NO_KERNELS) -> torch.Tensor:
        gate_up = self.gate_up_proj(x)
        if plan.silu_mul:
            return self.down_proj(kernels.silu_mul(gate_up))  # the same, in one pass
        gate, up = gate_up.chunk(2, dim=-1)
        return self.down_proj(F.silu(gate) * up)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor],
        kv: tuple[torch.Tensor, torch.Tensor],
        ctx: AttnContext,
    ) -> torch.Tensor:
        plan = ctx.kernels
        x = x + self.self_attn(self.input_layernorm(x, plan), rope, kv, ctx)
        return x + self.mlp(self.post_attention_layernorm(x, plan), plan)


class LlamaModel(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.config = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.tie_weights()
        # Not a buffer: the model may be built on the meta device and loaded with assign=True.
        self._inv_freq = rope_inv_freq(cfg)

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def rope(
        self, positions: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # positions: [B, T] -> cos, sin: [B, T, 1, hd]; angles in fp32 so large positions stay exact.
        # sin's first half is negated: apply_rope's rotate-half sign folded in once per forward.
        inv = self._inv_freq.to(positions.device)
        freqs = positions.float()[..., None] * inv  # [B, T, hd/2]
        emb = torch.cat((freqs, freqs), dim=-1)[:, :, None, :]
        sin = emb.sin()
        sin[..., : inv.shape[0]].neg_()
        return emb.cos().to(dtype), sin.to(dtype)

    def forward(
        self,
        input_ids: torch.Tensor,
        kv_caches: list[tuple[torch.Tensor, torch.Tensor]],
        ctx: AttnContext,
    ) -> torch.Tensor:
        """input_ids: [B, T] -> final hidden states [B, T, D] (call `compute_logits` on the rows needed)."""
        x = self.model.embed_tokens(input_ids)
        rope = self.rope(ctx.positions, x.dtype)
        for layer, kv in zip(self.model.layers, kv_caches, strict=True):
            x = layer(x, rope, kv, ctx)
        return self.model.norm(x, ctx.kernels)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.lm_head(hidden).float()


def hf_to_internal(hf_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HF names (q_proj, k_proj, ...) -> this model's names, concatenating the packed shards."""
    out: dict[str, torch.Tensor] = {}
    shards: dict[str, dict[int, torch.Tensor]] = {}
    for name, t in hf_state.items():
        prefix, _, rest = name.rpartition(".")  # rest: weight | bias
        mod_prefix, _, proj = prefix.rpartition(".")
        if proj in PACKED_MODULES:
            fused, idx = PACKED_MODULES[proj]
            shards.setdefault(f"{mod_prefix}.{fused}.{rest}", {})[idx] = t
        else:
            out[name] = t
    for name, parts in shards.items():
        out[name] = torch.cat([parts[i] for i in sorted(parts)], dim=0)
    return out


def internal_to_hf(model: LlamaForCausalLM) -> dict[str, torch.Tensor]:
    """This model's state dict with HF names (splits the fused projections)."""
    cfg = model.config
    q, kv = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim
    split_sizes = {"qkv_proj": [q, kv, kv], "gate_up_proj": [cfg.intermediate_size] * 2}
    names = {fused: [] for fused in split_sizes}
    for proj, (fused, _) in PACKED_MODULES.items():
        names[fused].append(proj)
    out: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        prefix, _, rest = name.rpartition(".")
        mod_prefix, _, mod = prefix.rpartition(".")
        if mod in split_sizes:
            for proj, part in zip(names[mod], t.split(split_sizes[mod], dim=0), strict=True):
                out[f"{mod_prefix}.{proj}.{rest}"] = part
        else:
            out[name] = t
    if cfg.tie_word_embeddings:
        out.pop("lm_head.weight", None)
    return out
