"""Owns the KV cache and runs prefill / batched decode steps (synchronous, no asyncio).

KV cache layout: slot-based, allocated once. k/v: [num_layers, max_num_seqs, n_kv_heads,
max_model_len, head_dim]. A sequence owns one slot; its token at position p lives at [:, slot, :, p].
"""

from __future__ import annotations

import torch

from worker.models.llama import AttnContext, LlamaConfig, LlamaForCausalLM


class ModelRunner:
    def __init__(self, model: LlamaForCausalLM, config: LlamaConfig, *, max_num_seqs: int,
                 max_model_len: int, dtype: torch.dtype, device: torch.device | str) -> None:
        self.model = model
        self.config = config
        self.num_slots = max_num_seqs
        self.max_model_len = max_model_len
        self.device = torch.device(device)
        self.dtype = dtype
        shape = (config.num_hidden_layers, max_num_seqs, config.num_key_value_heads,
                 max_model_len, config.head_dim)
        self.k_cache = torch.zeros(shape, dtype=dtype, device=self.device)
        self.v_cache = torch.zeros(shape, dtype=dtype, device=self.device)
        # Per-layer views, built once: [slots, n_kv, max_len, hd] each.
        self.kv_caches = [(self.k_cache[i], self.v_cache[i]) for i in range(config.num_hidden_layers)]

    @property
    def kv_cache_bytes(self) -> int:
        return 2 * self.k_cache.numel() * self.k_cache.element_size()

    @torch.inference_mode()
    def prefill(self, slot: int, token_ids: list[int], start_pos: int = 0) -> torch.Tensor:
        """Writes KV for token_ids at positions start_pos.. into `slot`; returns fp32 logits [vocab]
        of the last position. start_pos > 0: chunked prefill / prefix reuse (earlier KV already there)."""
        T = len(token_ids)
        self._check(slot, start_pos + T)
        if T == 0:
            raise ValueError("prefill needs at least one token")
        kv_len = start_pos + T
        positions = torch.arange(start_pos, kv_len, device=self.device)[None]  # [1, T]
        if start_pos == 0:
            mask, is_causal = None, True  # keys == queries: the plain causal mask
        else:
            # query at position p sees keys 0..p: mask [1, 1, T, kv_len]
            keys = torch.arange(kv_len, device=self.device)
            mask, is_causal = (keys[None, :] <= positions[0, :, None])[None, None], False
        ctx = AttnContext(
            slot_ids=torch.tensor([slot], device=self.device), positions=positions,
            slot_index=slice(slot, slot + 1), kv_len=kv_len, mask=mask, is_causal=is_causal)
        ids = torch.tensor([token_ids], dtype=torch.long, device=self.device)
        hidden = self.model(ids, self.kv_caches, ctx)  # [1, T, D]
        return self.model.compute_logits(hidden[0, -1])

    @torch.inference_mode()
    def decode(self, slots: list[int], token_ids: list[int], positions: list[int]) -> torch.Tensor:
        """One step for a batch: token_ids[i] sits at positions[i] in slots[i]; writes its KV
        there; returns fp32 logits [B, vocab]."""
        if not (len(slots) == len(token_ids) == len(positions)) or not slots:
            raise ValueError("slots, token_ids and positions must be non-empty and of equal length")
        if len(set(slots)) != len(slots):
            raise ValueError("a slot appears twice in one decode batch")
        for s, p in zip(slots, positions, strict=True):
            self._check(s, p + 1)
        kv_len = max(positions) + 1  # attend over the cache only up to the batch's furthest token
        pos = torch.tensor(positions, dtype=torch.long, device=self.device)[:, None]  # [B, 1]
        keys = torch.arange(kv_len, device=self.device)
        mask = (keys[None, :] <= pos)[:, None, None, :]  # [B, 1, 1, kv_len]: own length only
        slot_ids = torch.tensor(slots, dtype=torch.long, device=self.device)
        ctx = AttnContext(slot_ids=slot_ids, positions=pos, slot_index=_as_slice(slots, slot_ids),
                          kv_len=kv_len, mask=mask)
        ids = torch.tensor(token_ids, dtype=torch.long, device=self.device)[:, None]  # [B, 1]
        hidden = self.model(ids, self.kv_caches, ctx)  # [B, 1, D]
        return self.model.compute_logits(hidden[:, 0])

    @torch.inference_mode()
    def copy_prefix(self, src_slot: int, dst_slot: int, num_tokens: int) -> None:
        """Copies the first num_tokens positions of KV from one slot to another (prefix reuse)."""
        self._check(src_slot, num_tokens)
        self._check(dst_slot, num_tokens)
        if src_slot == dst_slot or num_tokens == 0:
            return
        for cache in (self.k_cache, self.v_cache):
            cache[:, dst_slot, :, :num_tokens] = cache[:, src_slot, :, :num_tokens]

    def _check(self, slot: int, end_pos: int) -> None:
        if not 0 <= slot < self.num_slots:
            raise ValueError(f"slot {slot} out of range [0, {self.num_slots})")
        if end_pos > self.max_model_len:
            raise ValueError(f"position {end_pos - 1} beyond max_model_len {self.max_model_len}")


def _as_slice(slots: list[int], slot_ids: torch.Tensor) -> torch.Tensor | slice:
    # Consecutive slots read the cache as a view; otherwise an index gather (one copy).
    first = slots[0]
    if slots == list(range(first, first + len(slots))):
        return slice(first, first + len(slots))
    return slot_ids
