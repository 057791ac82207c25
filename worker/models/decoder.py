"""The decoder every family shares: embeddings, pre-norm layers (attention + MLP or experts),
final norm, LM head, over the slot KV cache. Families set its switches through LlamaConfig
and replace a part where theirs differs (Gemma 3's layer: worker/models/gemma3.py).

q/k/v and gate/up are fused into one linear each (one matmul instead of three or two);
`PACKED_MODULES` maps the Hugging Face names onto the fused weights, in `hf_to_internal` and
`internal_to_hf`.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from worker.layers.attention import Attention, AttnContext
from worker.layers.mlp import GatedMLP, SparseMoE
from worker.layers.norm import RMSNorm
from worker.layers.rope import Rotary
from worker.models.llama_config import LlamaConfig

Rope = tuple[torch.Tensor, torch.Tensor]

# Hugging Face projection name -> (fused internal name, shard index).
PACKED_MODULES = {
    "q_proj": ("qkv_proj", 0),
    "k_proj": ("qkv_proj", 1),
    "v_proj": ("qkv_proj", 2),
    "gate_proj": ("gate_up_proj", 0),
    "up_proj": ("gate_up_proj", 1),
}


def make_mlp(cfg: LlamaConfig, layer: int) -> nn.Module:
    if cfg.is_moe(layer):
        return SparseMoE(cfg)
    return GatedMLP(cfg.hidden_size, cfg.intermediate_size, cfg.hidden_act, cfg.mlp_bias)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: LlamaConfig, layer: int) -> None:
        super().__init__()
        self.self_attn = Attention(cfg, sliding=cfg.is_sliding(layer))
        self.mlp = make_mlp(cfg, layer)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.residual_multiplier = cfg.residual_multiplier

    def forward(
        self, x: torch.Tensor, rope: Rope, kv: tuple[torch.Tensor, torch.Tensor], ctx: AttnContext
    ) -> torch.Tensor:
        plan = ctx.kernels
        h = self.self_attn(self.input_layernorm(x, plan), rope, kv, ctx)
        if self.residual_multiplier != 1.0:  # Granite
            h = h * self.residual_multiplier
        x = x + h
        h = self.mlp(self.post_attention_layernorm(x, plan), plan)
        if self.residual_multiplier != 1.0:
            h = h * self.residual_multiplier
        return x + h


class DecoderModel(nn.Module):
    def __init__(self, cfg: LlamaConfig, layer_class: type[nn.Module]) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(layer_class(cfg, i) for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class DecoderForCausalLM(nn.Module):
    layer_class: type[nn.Module] = DecoderLayer

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.config = cfg
        self.model = DecoderModel(cfg, self.layer_class)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.tie_weights()
        # Not buffers: the model may be built on the meta device and loaded with assign=True.
        self._rotary = Rotary(
            cfg.head_dim, cfg.rope_theta, cfg.rope_scaling, cfg.max_position_embeddings
        )
        self._has_sliding = cfg.has_sliding_layers  # asked once, not in every forward
        self._local_rotary = None  # sliding layers' own rope (Gemma 3)
        if cfg.rope_local_theta is not None:
            self._local_rotary = Rotary(
                cfg.head_dim, cfg.rope_local_theta, None, cfg.max_position_embeddings
            )

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def rope(self, positions: torch.Tensor, dtype: torch.dtype, kv_len: int = 0) -> Rope:
        """positions [B, T] -> cos, sin [B, T, 1, hd] (sin's first half negated: apply_rope)."""
        return self._rotary(positions, dtype, kv_len)

    def forward(
        self,
        input_ids: torch.Tensor,
        kv_caches: list[tuple[torch.Tensor, torch.Tensor]],
        ctx: AttnContext,
    ) -> torch.Tensor:
        """input_ids: [B, T] -> final hidden states [B, T, D] (call `compute_logits` on the rows needed)."""
        x = self.model.embed_tokens(input_ids)
        if self.config.embedding_multiplier != 1.0:  # in the model dtype, as transformers does
            x = x * torch.tensor(self.config.embedding_multiplier, dtype=x.dtype)
        rope = self.rope(ctx.positions, x.dtype, ctx.kv_len)
        local_rope, local_ctx = rope, ctx
        if self._has_sliding:
            local_ctx = self._sliding_context(ctx, x.dtype)
            if self._local_rotary is not None:
                local_rope = self._local_rotary(ctx.positions, x.dtype, ctx.kv_len)
        for layer, kv in zip(self.model.layers, kv_caches, strict=True):
            if layer.self_attn.sliding:
                x = layer(x, local_rope, kv, local_ctx)
            else:
                x = layer(x, rope, kv, ctx)
        return self.model.norm(x, ctx.kernels)

    def _sliding_context(self, ctx: AttnContext, dtype: torch.dtype) -> AttnContext:
        """The context of a sliding layer: a key is attended when it is at most
        `sliding_window - 1` positions behind the query (transformers' sliding_window_overlay),
        besides being causal. Built once per forward; unchanged while every key fits."""
        window = self.config.sliding_window
        if ctx.kv_len <= window:
            return ctx
        keys = torch.arange(ctx.kv_len, device=ctx.positions.device)
        q = ctx.positions[..., None]  # [B, T, 1]
        hidden = (keys > q) | (keys <= q - window)  # [B, T, kv_len]
        mask = torch.zeros(hidden.shape, dtype=dtype, device=hidden.device)
        mask = mask.masked_fill_(hidden, float("-inf"))[:, None]
        return replace(ctx, mask=mask, is_causal=False, kernel_decode=None)

    def compute_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(hidden).float()
        if self.config.logits_scaling != 1.0:  # Granite
            logits = logits / self.config.logits_scaling
        if (cap := self.config.final_logit_softcapping) is not None:  # Gemma
            logits = torch.tanh(logits / cap) * cap
        return logits


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


def internal_to_hf(model: DecoderForCausalLM) -> dict[str, torch.Tensor]:
    """This model's state dict with HF names (splits the fused projections; dense models)."""
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
