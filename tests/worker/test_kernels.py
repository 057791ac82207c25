"""worker.kernels (int4 / int8 GEMM on AMX and AVX-512 BF16, decode attention, norms) against
torch references."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from worker import kernels

# Only a CPU without AVX512-BF16 (or LLMAAS_NATIVE_KERNELS=0) skips these: where the kernels
# should load, a failed build fails every test here (kernels.linear & co. raise).
pytestmark = pytest.mark.skipif(
    not kernels.wanted(),
    reason="worker.kernels off: no AVX512-BF16 here, or LLMAAS_NATIVE_KERNELS=0",
)
# The GEMM's two paths: AVX-512 runs wherever the kernels do, AMX where the CPU has it.
GEMM_PATHS = [
    False,
    pytest.param(True, marks=pytest.mark.skipif(not kernels.amx(), reason="no AMX here")),
]


def test_the_kernels_build_and_load_where_the_cpu_supports_them() -> None:
    assert kernels.available(), "see the worker.kernels log line for why the build failed"


def dequantised(packed: kernels.PackedWeight) -> torch.Tensor:
    """The fp32 weights [N, K] the kernel multiplies by, rebuilt from the packed layout."""
    n_pad, K = packed.padded_out, packed.in_features
    if packed.mode == "int8":
        q = packed.qweight.permute(0, 2, 1, 3).reshape(n_pad, K).float()
        return (q * packed.scales[:, None])[: packed.out_features]
    groups = K // kernels.GROUP
    q = packed.qweight  # [block, group, pair, lane]
    q = torch.stack([q & 0xF, q >> 4], dim=-1).permute(0, 3, 1, 2, 4).reshape(n_pad, K).float()
    sl = packed.scales.float()  # [block, group, 2, lane]
    scale = sl[:, :, 0].permute(0, 2, 1).reshape(n_pad, groups, 1)
    low = sl[:, :, 1].permute(0, 2, 1).reshape(n_pad, groups, 1)
    w = q.reshape(n_pad, groups, kernels.GROUP) * scale + low
    return w.reshape(n_pad, K)[: packed.out_features]


@pytest.mark.parametrize("use_amx", GEMM_PATHS)
@pytest.mark.parametrize("mode", ["int4", "int8"])
@pytest.mark.parametrize(("n", "k"), [(16, 64), (100, 64), (960, 576), (576, 1536)])
def test_kernel_matches_its_dequantised_weights(mode: str, n: int, k: int, use_amx: bool) -> None:
    torch.manual_seed(n + k)
    w = torch.randn(n, k) * 0.05
    packed = kernels.pack_int4(w) if mode == "int4" else kernels.pack_int8(w)
    ref_w = dequantised(packed)
    # the grid is the weights' own: int4 within a step of each group, int8 within 1/127
    assert (ref_w - w).abs().max() <= (0.05 * 8 / (15 if mode == "int4" else 127))
    for rows in (1, 5, 7, 8, 16, 17, 23, 32):
        x = torch.randn(rows, k).bfloat16()
        y = kernels.linear(x, packed, use_amx=use_amx)
        assert y.shape == (rows, n) and y.dtype == torch.bfloat16
        ref = x.float() @ ref_w.T
        # products exact, fp32 sums, one bf16 rounding of each weight and of the output
        assert (y.float() - ref).abs().max() <= 0.01 * ref.abs().max(), (mode, n, k, rows)


def test_the_gemm_uses_amx_exactly_where_the_cpu_has_it() -> None:
    has_amx = {"amx_tile", "amx_bf16"} <= kernels._cpu_flags()
    has_amx &= os.environ.get("LLMAAS_NATIVE_AMX", "1") != "0"
    assert kernels.amx() == has_amx
    if not has_amx:
        with pytest.raises(RuntimeError, match="AMX is not available"):
            kernels.linear(
                torch.randn(2, 64).bfloat16(), kernels.pack_int4(torch.randn(16, 64)), use_amx=True
            )


@pytest.mark.parametrize("use_amx", GEMM_PATHS)
def test_more_rows_than_two_tiles_are_refused(use_amx: bool) -> None:
    packed = kernels.pack_int4(torch.randn(16, 64))
    with pytest.raises(ValueError, match="at most 32 rows"):
        kernels.linear(torch.randn(33, 64).bfloat16(), packed, use_amx=use_amx)


def test_torch_gemm_is_right_after_the_kernel_used_the_tiles() -> None:
    # oneDNN runs bf16 GEMMs on the same AMX tiles: the kernel must leave them released
    w = torch.randn(256, 576).bfloat16()
    kernels.linear(torch.randn(16, 576).bfloat16(), kernels.pack_int8(w))
    x = torch.randn(128, 576).bfloat16()
    ref = x.float() @ w.float().T
    assert (F.linear(x, w).float() - ref).abs().max() <= 0.01 * ref.abs().max()


def test_rope_write_kv_matches_the_torch_rotation_and_cache_writes() -> None:
    from worker.models.llama import LlamaConfig, LlamaForCausalLM, apply_rope

    torch.manual_seed(1)
    H, KVH, D, B, slots_n, max_len = 6, 2, 32, 3, 5, 40
    config = LlamaConfig.tiny(num_attention_heads=H, num_key_value_heads=KVH, head_dim=D)
    model = LlamaForCausalLM(config)
    positions = torch.tensor([7, 0, 39])
    slots = torch.tensor([4, 0, 2])
    cos, sin = model.rope(positions[:, None], torch.bfloat16)  # [B, 1, 1, D]
    qkv = torch.randn(B, (H + 2 * KVH) * D).bfloat16()
    kv = (
        torch.zeros(slots_n, KVH, max_len, D).bfloat16(),
        torch.zeros(slots_n, KVH, max_len, D).bfloat16(),
    )
    q = kernels.rope_write_kv(qkv, cos.view(B, D), sin.view(B, D), kv, slots, positions, H, KVH)
    heads = qkv.view(B, 1, H + 2 * KVH, D)
    ref = apply_rope(heads[:, :, : H + KVH], cos, sin)[:, 0]  # [B, H + KVH, D]
    assert torch.equal(q, ref[:, :H])
    for b in range(B):
        assert torch.equal(kv[0][slots[b], :, positions[b]], ref[b, H:])
        assert torch.equal(kv[1][slots[b], :, positions[b]], heads[b, 0, H + KVH :])
    assert kv[0].count_nonzero() == B * KVH * D  # nothing else written
    with pytest.raises(ValueError, match="outside the cache"):
        kernels.rope_write_kv(
            qkv, cos.view(B, D), sin.view(B, D), kv, slots, torch.tensor([1, 2, 40]), H, KVH
        )


@pytest.mark.parametrize(("heads", "kv_heads", "dim"), [(9, 3, 64), (8, 8, 32), (32, 4, 128)])
def test_decode_attention_matches_sdpa(heads: int, kv_heads: int, dim: int) -> None:
    torch.manual_seed(heads)
    slots_n, max_len = 6, 300
    k_cache = torch.randn(slots_n, kv_heads, max_len, dim).bfloat16()
    v_cache = torch.randn(slots_n, kv_heads, max_len, dim).bfloat16()
    slots, lengths = torch.tensor([5, 0, 3]), torch.tensor([1, 300, 137])
    q = torch.randn(3, heads, dim).bfloat16()
    scratch = torch.empty(3 * heads * max_len)
    out = kernels.decode_attention(q, (k_cache, v_cache), slots, lengths, kv_heads, scratch)
    for b in range(3):
        n, s = int(lengths[b]), int(slots[b])
        ref = F.scaled_dot_product_attention(
            q[b, :, None].float(),
            k_cache[s, :, :n].float(),
            v_cache[s, :, :n].float(),
            enable_gqa=True,
        )[:, 0]  # [H, D]
        got = out[b].view(heads, dim).float()
        assert (got - ref).abs().max() <= 0.01 * ref.abs().max() + 1e-3, b


def test_model_runner_decodes_the_same_on_both_attention_paths() -> None:
    from worker.model_runner import ModelRunner
    from worker.models.llama import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(2)
    config = LlamaConfig.tiny(num_attention_heads=6, num_key_value_heads=2, head_dim=16)
    model = LlamaForCausalLM(config).bfloat16()
    runners = [
        ModelRunner(
            model, config, max_num_seqs=4, max_model_len=64, dtype=torch.bfloat16, device="cpu"
        )
        for _ in range(2)
    ]
    runners[1]._decode_scratch = None  # the torch ops (SDPA) path
    assert runners[0]._decode_scratch is not None
    prompts = {3: [5, 6, 7, 8, 9], 1: [10, 11], 0: list(range(20, 50))}
    for runner in runners:
        for slot, ids in prompts.items():
            runner.prefill(slot, ids)
    logits = [r.decode([3, 1, 0], [1, 2, 3], [len(prompts[s]) for s in (3, 1, 0)]) for r in runners]
    assert (logits[0] - logits[1]).abs().max() <= 0.02 * logits[1].abs().max()
    # the new token's K/V landed in the cache the same way on both paths
    for a, b in zip(
        (runners[0].k_cache, runners[0].v_cache),
        (runners[1].k_cache, runners[1].v_cache),
        strict=True,
    ):
        assert (a.float() - b.float()).abs().max() <= 0.02 * b.float().abs().max()


@pytest.mark.parametrize("rows", [1, 16, 300])
def test_rms_norm_and_silu_mul_round_like_the_torch_ops(rows: int) -> None:
    torch.manual_seed(rows)
    x = (torch.randn(rows, 576) * 3).bfloat16()
    w = torch.randn(576).bfloat16()
    ref = w * F.rms_norm(x.float(), (576,), None, 1e-5).bfloat16()
    got = kernels.rms_norm(x, w, 1e-5)
    # same recipe; fp32 sums in another order may move a value by one bf16 step at most
    assert ((got.float() - ref.float()).abs() <= ref.float().abs() / 128 + 1e-6).all()
    assert (got != ref).float().mean() < 0.01
    gate_up = (torch.randn(rows, 2 * 1536) * 4).bfloat16()
    gate, up = gate_up.chunk(2, dim=-1)
    ref = F.silu(gate) * up
    got = kernels.silu_mul(gate_up)
    assert ((got.float() - ref.float()).abs() <= ref.float().abs() / 128 + 1e-6).all()
    assert (got != ref).float().mean() < 0.01


def test_wrong_dtypes_and_shapes_are_refused_before_the_c_side_reads_them() -> None:
    packed = kernels.pack_int4(torch.randn(16, 64))
    with pytest.raises(ValueError, match="bf16"):
        kernels.linear(torch.randn(2, 64), packed)  # fp32 activations
    with pytest.raises(ValueError, match="rms_norm"):
        kernels.rms_norm(torch.randn(2, 64).bfloat16(), torch.ones(32).bfloat16(), 1e-5)
    with pytest.raises(ValueError, match="silu_mul"):
        kernels.silu_mul(torch.randn(2, 40).bfloat16())
