"""Owns the KV cache and runs prefill / batched decode steps (synchronous, no asyncio).

KV cache layout: slot-based, allocated once. k/v: [num_layers, max_num_seqs, n_kv_heads,
max_model_len, head_dim]. A sequence owns one slot; its token at position p lives at [:, slot, :, p].
"""

from __future__ import annotations

import torch

from worker.kernels.plan import KernelPlan
from worker.models.llama import AttnContext, KernelDecode, LlamaConfig, LlamaForCausalLM


class ModelRunner:
    def __init__(
        self,
        model: LlamaForCausalLM,
        config: LlamaConfig,
        *,
        max_num_seqs: int,
        max_model_len: int,
        dtype: torch.dtype,
        device: torch.device | str,
        kernels: KernelPlan | None = None,
    ) -> None:
        """kernels: the load's KernelPlan (None: decided here from the model's dtype)."""
        self.model = model
        self.config = config
        self.num_slots = max_num_seqs
        self.max_model_len = max_model_len
        self.device = torch.device(device)
        self.dtype = dtype
        shape = (
            config.num_hidden_layers,
            max_num_seqs,
            config.num_key_value_heads,
            max_model_len,
            config.head_dim,
        )
        self.k_cache = torch.zeros(shape, dtype=dtype, device=self.device)
        self.v_cache = torch.zeros(shape, dtype=dtype, device=self.device)
        # Per-layer views, built once: [slots, n_kv, max_len, hd] each.
        self.kv_caches = [
            (self.k_cache[i], self.v_cache[i]) for i in range(config.num_hidden_layers)
        ]
        # Built once: positions 0..max_len-1 (masks, prefill positions) and the mask dtype (SDPA
        # wants the query's dtype, which is the weights' even when `dtype` names another).
        self._arange = torch.arange(max_model_len, device=self.device)
        self._mask_dtype = next(model.parameters()).dtype
        if kernels is None:
            kernels = KernelPlan.decide(config, self._mask_dtype, self.device)
        self.kernels = kernels
        # Decode attention on worker.kernels (bf16 on an AVX512-BF16 CPU): fp32 working memory for
        # its scores, allocated once. The kernel reads the cache as bf16.
        self._decode_scratch: torch.Tensor | None = None
        if kernels.attention and dtype == torch.bfloat16:
            self._decode_scratch = torch.empty(
                max_num_seqs * config.num_attention_heads * max_model_len, dtype=torch.float32
            )

    @property
    def kv_cache_bytes(self) -> int:
        return 2 * self.k_cache.numel() * self.k_cache.element_size()

    @torch.inference_mode()
    def prefill(self, slot: int, token_ids: list[int], start_pos: int = 0) -> torch.Tensor:
        """Writes KV for token_ids at positions start_pos.. into `slot`; returns fp32 logits [vocab]
        of the last position. start_pos > 0: chunked prefill / prefix reuse (earlier KV already there)."""
        return self.prefill_batch([slot], [token_ids], [start_pos])[0]

    @torch.inference_mode()
    def prefill_batch(
        self, slots: list[int], token_ids: list[list[int]], start_pos: list[int]
    ) -> torch.Tensor:
        """Several prompts (or prompt chunks) in one forward: token_ids[i] goes to positions
        start_pos[i].. of slots[i]. Returns fp32 logits [B, vocab] of each row's last token.

        Rows are right-padded to the longest; pad tokens are computed but their KV is never
        written, and their outputs are dropped.
        """
        if not (len(slots) == len(token_ids) == len(start_pos)) or not slots:
            raise ValueError("slots, token_ids and start_pos must be non-empty and of equal length")
        if len(set(slots)) != len(slots):
            raise ValueError("a slot appears twice in one prefill batch")
        lens = [len(t) for t in token_ids]
        if min(lens) == 0:
            raise ValueError("prefill needs at least one token")
        for s, p, n in zip(slots, start_pos, lens, strict=True):
            self._check(s, p + n)
        B, T = len(slots), max(lens)
        ids = torch.tensor(
            [t + [0] * (T - len(t)) for t in token_ids], device=self.device
        )  # [B, T]
        meta = torch.tensor([slots, start_pos, lens], device=self.device)  # [3, B]
        positions = meta[1, :, None] + self._arange[:T]  # [B, T]; past a row's end: padding
        kv_len = max(p + n for p, n in zip(start_pos, lens, strict=True))
        ctx = AttnContext(
            slot_ids=meta[0],
            positions=positions,
            slot_index=_as_slice(slots, meta[0]),
            kv_len=kv_len,
            mask=None,
            kernels=self.kernels,
        )
        if max(start_pos) == 0 and min(lens) == T:
            ctx.is_causal = True  # fresh prompts of one length: keys == queries, plain causal
        else:
            ctx.mask = self._mask(positions, kv_len)
            if min(lens) < T:
                ctx.write_rows = (self._arange[:T] < meta[2, :, None]).nonzero(as_tuple=True)
        hidden = self.model(ids, self.kv_caches, ctx)  # [B, T, D]
        last = hidden[torch.arange(B, device=self.device), meta[2] - 1]  # [B, D]
        return self.model.compute_logits(last)

    @torch.inference_mode()
    def decode(self, slots: list[int], token_ids: list[int], positions: list[int]) -> torch.Tensor:
        """One step for a batch: token_ids[i] sits at positions[i] in slots[i]; writes its KV
        there; returns fp32 logits [B, vocab]."""
        if not (len(slots) == len(token_ids) == len(positions)) or not slots:
            raise ValueError("slots, token_ids and positions must be non-empty and of equal length")
        if len(set(slots)) != len(slots):
            raise ValueError("a slot appears twice in one decode batch")
        # Range checks on the whole batch at once (no Python loop per sequence).
        if min(slots) < 0 or max(slots) >= self.num_slots:
            raise ValueError(f"slot out of range [0, {self.num_slots}): {slots}")
        if min(positions) < 0 or max(positions) >= self.max_model_len:
            raise ValueError(
                f"position beyond max_model_len {self.max_model_len}: {max(positions)}"
            )
        kv_len = max(positions) + 1  # attend over the cache only up to the batch's furthest token
        meta = torch.tensor(
            [slots, token_ids, positions], device=self.device
        )  # [3, B]: one copy in
        pos = meta[2, :, None]  # [B, 1]
        ctx = AttnContext(
            slot_ids=meta[0],
            positions=pos,
            slot_index=_as_slice(slots, meta[0]),
            kv_len=kv_len,
            mask=None,
            kernels=self.kernels,
        )
        if self._decode_scratch is not None:
            ctx.kernel_decode = KernelDecode(pos[:, 0] + 1, self._decode_scratch)
        else:
            ctx.mask = self._mask(pos, kv_len)
        hidden = self.model(meta[1, :, None], self.kv_caches, ctx)  # [B, 1, D]
        return self.model.compute_logits(hidden[:, 0])

    def _mask(self, positions: torch.Tensor, kv_len: int) -> torch.Tensor:
        """positions [B, T] -> additive mask [B, 1, T, kv_len]: 0 where key <= query position,
        -inf elsewhere. Built once per forward in the model dtype (SDPA adds it as is)."""
        hidden = self._arange[:kv_len] > positions[..., None]  # [B, T, kv_len]
        mask = torch.zeros(hidden.shape, dtype=self._mask_dtype, device=self.device)
        return mask.masked_fill_(hidden, float("-inf"))[:, None]

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
