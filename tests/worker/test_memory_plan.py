"""worker.memory_plan: the slot arithmetic, the sizes it reads, and a refusal at start."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from worker.config import WorkerConfig
from worker.loader import LoadedModel
from worker.memory_plan import (
    GIB,
    MIB,
    RESERVE_BYTES,
    Budget,
    MemoryPlanError,
    parse_bytes,
    plan_kv_cache,
    plan_slots,
    slot_bytes,
    weights_bytes,
)
from worker.model_runner import ModelRunner

SLOT = 10 * MIB
ROOMY = dict(slot_bytes=SLOT, weights_bytes=100 * MIB, free_bytes=64 * GIB, tokens=2048)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4GiB", 4 * GIB),
        ("512 MiB", 512 * MIB),
        ("1.5G", int(1.5 * GIB)),
        ("2GB", 2 * 10**9),
        ("1000000", 1_000_000),
        ("64k", 64 * 1024),
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "lots", "4 GiBs", "-1GiB", "1e9"])
def test_parse_bytes_refuses_what_is_not_a_size(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_bytes(text)


def test_no_budget_keeps_the_slot_count() -> None:
    plan = plan_slots(max_num_seqs=16, budget=Budget(), total_bytes=128 * GIB, **ROOMY)
    assert (plan.num_slots, plan.kv_cache_bytes) == (16, 16 * SLOT)


def test_kv_cache_budget_bounds_the_slots() -> None:
    budget = Budget(kv_cache_bytes=35 * MIB)  # 3.5 slots
    plan = plan_slots(max_num_seqs=16, budget=budget, total_bytes=128 * GIB, **ROOMY)
    assert plan.num_slots == 3
    big = Budget(kv_cache_bytes=10 * GIB)  # more than 16 slots: max_num_seqs still caps
    assert plan_slots(max_num_seqs=16, budget=big, total_bytes=128 * GIB, **ROOMY).num_slots == 16


def test_memory_fraction_counts_weights_and_reserve() -> None:
    # 0.5 of 2 GiB = 1024 MiB - 100 MiB weights - the reserve, in 10 MiB slots
    expected = (1024 * MIB - 100 * MIB - RESERVE_BYTES) // SLOT
    budget = Budget(memory_fraction=0.5)
    plan = plan_slots(max_num_seqs=1000, budget=budget, total_bytes=2 * GIB, **ROOMY)
    assert plan.num_slots == expected == 66


def test_shares_split_one_fraction() -> None:
    """Two workers with 0.45 each get what one with 0.9 would, less one more weights and
    reserve: the split the launcher makes (each worker counts its own weights)."""
    one = plan_slots(
        max_num_seqs=10**6, budget=Budget(memory_fraction=0.9), total_bytes=8 * GIB, **ROOMY
    )
    half = plan_slots(
        max_num_seqs=10**6, budget=Budget(memory_fraction=0.45), total_bytes=8 * GIB, **ROOMY
    )
    assert 2 * half.kv_cache_bytes <= one.kv_cache_bytes
    assert 2 * half.num_slots * SLOT >= one.kv_cache_bytes - 2 * SLOT - 100 * MIB - RESERVE_BYTES


def test_free_memory_bounds_a_budget() -> None:
    roomy = {**ROOMY, "free_bytes": RESERVE_BYTES + 5 * SLOT}
    budget = Budget(kv_cache_bytes=GIB)
    assert plan_slots(max_num_seqs=16, budget=budget, total_bytes=GIB, **roomy).num_slots == 5


def test_too_small_budget_refuses_naming_the_flag() -> None:
    with pytest.raises(MemoryPlanError, match="--kv-cache-memory 5.00 MiB .* one slot of 2048"):
        plan_slots(max_num_seqs=4, budget=Budget(kv_cache_bytes=5 * MIB), total_bytes=GIB, **ROOMY)
    with pytest.raises(MemoryPlanError, match="--memory-fraction 0.01 of 1.00 GiB"):
        plan_slots(max_num_seqs=4, budget=Budget(memory_fraction=0.01), total_bytes=GIB, **ROOMY)


def test_no_budget_refuses_slots_beyond_free_memory() -> None:
    tight = {**ROOMY, "free_bytes": RESERVE_BYTES + 3 * SLOT}
    with pytest.raises(MemoryPlanError, match="16 slot.* lower --max-num-seqs"):
        plan_slots(max_num_seqs=16, budget=Budget(), total_bytes=GIB, **tight)


def test_sizes_match_the_runner_and_the_model(tiny_model: LoadedModel) -> None:
    for dtype in (torch.float32, torch.bfloat16):
        runner = ModelRunner(
            tiny_model.model,
            tiny_model.config,
            max_num_seqs=3,
            max_model_len=64,
            dtype=dtype,
            device="cpu",
        )
        assert 3 * slot_bytes(tiny_model.config, 64, dtype, scratch=False) == (
            runner.kv_cache_bytes
        )
    params = {p.data_ptr(): p.numel() * p.element_size() for p in tiny_model.model.parameters()}
    assert weights_bytes(tiny_model.model) == sum(params.values())
    plan = plan_kv_cache(
        tiny_model, max_num_seqs=3, max_model_len=64, dtype=torch.float32, budget=Budget()
    )
    assert plan.num_slots == 3


def test_config_budget_fields() -> None:
    assert WorkerConfig(kv_cache_memory="1GiB").budget == Budget(kv_cache_bytes=GIB)
    with pytest.raises(ValueError, match="LLMAAS_WORKER_KV_CACHE_MEMORY.*'lots' is not a size"):
        WorkerConfig(kv_cache_memory="lots")
    with pytest.raises(ValueError, match="memory_fraction .* excludes kv_cache_memory"):
        WorkerConfig(kv_cache_memory="1GiB", memory_fraction=0.5)
    with pytest.raises(ValueError, match="must be in \\[0, 1\\]"):
        WorkerConfig(memory_fraction=1.5)


def test_worker_refuses_a_too_small_budget_at_start(tiny_model_dir: Path) -> None:
    """`python -m worker` with a KV budget below one slot exits at start, with one clear line."""
    cmd = [sys.executable, "-m", "worker", "--model", str(tiny_model_dir), "--port", "0"]
    cmd += ["--dtype", "float32", "--kv-cache-memory", "1KiB", "--num-threads", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode != 0
    assert "worker: the model does not fit: --kv-cache-memory 1.00 KiB" in done.stderr
    assert "Traceback" not in done.stderr
