"""How many KV-cache slots a worker allocates: its slot count, bounded by a memory budget.

The KV cache is slot-based (worker/model_runner.py): each slot holds max_model_len tokens of
every layer's K and V, allocated once at start. A worker is given at most one budget:

- `--kv-cache-memory 4GiB`: the bytes the KV cache may take;
- `--memory-fraction 0.45`: the share of the device's total memory (RAM on CPU, the GPU's
  on CUDA) the whole worker may take: weights, the KV cache and a working reserve (vLLM's
  `gpu_memory_utilization`). `make run` gives each worker on a machine its share of one
  mesh-wide fraction (tools/launcher/models.py), so workers do not each count on the same
  free memory.

The slots are `--max-num-seqs`, fewer when the budget holds fewer (logged); none fitting, or
a cache larger than the memory free once the weights are loaded, is refused at start with
a message that names the flags to change. `plan_slots` is the arithmetic, device-free.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

import torch

from mesh.config import ConfigError

KIB, MIB, GIB = 1024, 1024**2, 1024**3
# Working memory of a step beyond weights and KV (activations, logits, allocator slack).
RESERVE_BYTES = 256 * MIB
_UNITS = {
    "": 1,
    "b": 1,
    "k": KIB,
    "kib": KIB,
    "kb": 1000,
    "m": MIB,
    "mib": MIB,
    "mb": 1000**2,
    "g": GIB,
    "gib": GIB,
    "gb": 1000**3,
    "t": 1024**4,
    "tib": 1024**4,
    "tb": 1000**4,
}


class MemoryPlanError(ConfigError):
    """The model does not fit the budget or the device: the worker does not start."""


def parse_bytes(text: str) -> int:
    """'4GiB', '512 MiB', '1.5G' (binary), '2GB' (decimal), '1000000' -> bytes."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    unit = m[2].lower() if m else ""
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size (e.g. 4GiB, 512MiB, 2GB or a number of bytes)")
    return int(float(m[1]) * _UNITS[unit])


def format_bytes(n: float) -> str:
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if abs(n) >= size:
            return f"{n / size:.2f} {unit}"
    return f"{int(n)} B"


@dataclass(slots=True, frozen=True)
class Budget:
    """At most one of the two; neither: the slot count alone, checked against free memory."""

    kv_cache_bytes: int = 0
    memory_fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.kv_cache_bytes < 0:
            raise ValueError(f"kv_cache_memory must be >= 0, got {self.kv_cache_bytes}")
        if not 0.0 <= self.memory_fraction <= 1.0:
            raise ValueError(f"memory_fraction must be in [0, 1], got {self.memory_fraction}")
        if self.kv_cache_bytes and self.memory_fraction:
            raise ValueError("give kv_cache_memory or memory_fraction, not both")


@dataclass(slots=True, frozen=True)
class MemoryPlan:
    num_slots: int
    slot_bytes: int  # one slot: max_model_len tokens of K and V (+ decode scratch)
    weights_bytes: int
    limit_bytes: float  # what the KV cache may take (budget and free memory); inf: no bound

    @property
    def kv_cache_bytes(self) -> int:
        return self.num_slots * self.slot_bytes


def plan_slots(
    *,
    max_num_seqs: int,
    slot_bytes: int,
    weights_bytes: int,
    budget: Budget,
    free_bytes: int,
    total_bytes: int,
    tokens: int,
) -> MemoryPlan:
    """The slot count: max_num_seqs, fewer when the budget holds fewer. free_bytes: the
    device's free memory once the weights are loaded; total_bytes: its size. Raises
    MemoryPlanError when no slot fits, or (no budget) when max_num_seqs slots do not."""
    one = f"one slot of {tokens} tokens takes {format_bytes(slot_bytes)}"
    room_free = free_bytes - RESERVE_BYTES
    if budget.kv_cache_bytes:
        room = budget.kv_cache_bytes
        what = f"--kv-cache-memory {format_bytes(room)}"
    elif budget.memory_fraction:
        share = budget.memory_fraction * total_bytes
        room = share - weights_bytes - RESERVE_BYTES
        what = (
            f"--memory-fraction {budget.memory_fraction:g} of {format_bytes(total_bytes)} "
            f"({format_bytes(share)}, of which the weights take {format_bytes(weights_bytes)} "
            f"and the working reserve {format_bytes(RESERVE_BYTES)})"
        )
    else:
        room, what = math.inf, ""
    if room < slot_bytes:
        raise MemoryPlanError(
            f"the model does not fit: {what} leaves {format_bytes(max(room, 0))} for the KV "
            f"cache, and {one}; raise the budget or lower --max-model-len"
        )
    limit = min(room, room_free)
    slots = min(max_num_seqs, int(limit // slot_bytes))
    if slots < 1 or (not what and slots < max_num_seqs):
        wanted = max_num_seqs if not what else 1
        raise MemoryPlanError(
            f"the KV cache does not fit the free memory: {wanted} slot(s) of {tokens} tokens "
            f"take {format_bytes(wanted * slot_bytes)}, but {format_bytes(max(free_bytes, 0))} "
            f"is free once the weights ({format_bytes(weights_bytes)}) are loaded, less a "
            f"{format_bytes(RESERVE_BYTES)} working reserve; lower --max-num-seqs or "
            "--max-model-len, or set --kv-cache-memory / --memory-fraction"
        )
    return MemoryPlan(slots, slot_bytes, weights_bytes, limit)


# -- measuring the model and the device -------------------------------------------------


def plan_kv_cache(
    loaded: Any, *, max_num_seqs: int, max_model_len: int, dtype: torch.dtype, budget: Budget
) -> MemoryPlan:
    """The plan for a loaded model (worker.loader.LoadedModel), its weights on their device."""
    weights = weights_bytes(loaded.model)
    device = next(loaded.model.parameters()).device
    free, total = device_memory(device)
    scratch = bool(getattr(loaded.kernels, "attention", False)) and dtype == torch.bfloat16
    return plan_slots(
        max_num_seqs=max_num_seqs,
        slot_bytes=slot_bytes(loaded.config, max_model_len, dtype, scratch),
        weights_bytes=weights,
        budget=budget,
        free_bytes=free,
        total_bytes=total,
        tokens=max_model_len,
    )


def slot_bytes(config: Any, max_model_len: int, dtype: torch.dtype, scratch: bool) -> int:
    """One slot's KV (K and V of every layer) plus, with the native decode attention, its
    fp32 score scratch (worker/model_runner.py's layout)."""
    per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim
    size = per_token * max_model_len * torch.tensor([], dtype=dtype).element_size()
    if scratch:
        size += config.num_attention_heads * max_model_len * 4
    return size


def weights_bytes(model: torch.nn.Module) -> int:
    """Parameters and buffers, each storage once (tied embeddings share one)."""
    seen: set[int] = set()
    total = 0
    for t in [*model.parameters(), *model.buffers()]:
        if t.device.type == "meta" or t.untyped_storage().data_ptr() in seen:
            continue
        seen.add(t.untyped_storage().data_ptr())
        total += t.untyped_storage().nbytes()
    return total


def device_memory(device: torch.device | str) -> tuple[int, int]:
    """(free, total) bytes of the device: MemAvailable / MemTotal on CPU, the GPU's own."""
    dev = torch.device(device)
    if dev.type == "cuda":
        free, total = torch.cuda.mem_get_info(dev)
        return int(free), int(total)
    if dev.type == "mps":
        total = int(torch.mps.recommended_max_memory())
        return total - int(torch.mps.driver_allocated_memory()), total
    return _meminfo()


def _meminfo() -> tuple[int, int]:
    try:
        with open("/proc/meminfo") as f:
            info = {k: int(v.split()[0]) * KIB for k, v in (line.split(":", 1) for line in f)}
        return info["MemAvailable"], info["MemTotal"]
    except (OSError, KeyError, ValueError):  # not Linux: total physical memory, all free
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total
