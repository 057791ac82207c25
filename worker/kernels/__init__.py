"""Native CPU kernels for the decode step, via ctypes: weight-only int4 / int8 GEMM for
decode-sized batches (`qgemm.c`, on AMX tiles where the CPU has them, else AVX-512 BF16),
the attention of one new token per sequence (`decode.c`: rotary + KV-cache write, attention
over the cache), and RMSNorm / SwiGLU in one pass each (`elementwise.c`). Each replaces
several torch ops whose per-call cost dominated a small model's decode step (see the sources
for figures).

The C sources are compiled once per machine with the system C compiler into a cache folder
(`LLMAAS_KERNEL_CACHE`, default `~/.cache/llmaas/kernels`) and loaded after torch, so its
OpenMP calls run on torch's libgomp thread pool. `available()` is False (and the callers
keep torch's own kernels) when the CPU lacks AVX-512 BF16 (x86 from Cooper Lake / Zen 4 on),
no compiler is found, or `LLMAAS_NATIVE_KERNELS=0`; why is logged once. `amx()` says whether
the GEMM runs on AMX (`LLMAAS_NATIVE_AMX=0` keeps it on AVX-512, to measure how a CPU without
AMX fares).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from mesh import native

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SOURCES = [HERE / name for name in ("qgemm.c", "decode.c", "elementwise.c")]
HEADERS = [HERE / "simd.h"]
CFLAGS = ["-O3", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-mfma"]
CFLAGS += ["-mamx-tile", "-mamx-bf16", "-fopenmp"]
CPU_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512_bf16")
AMX_FLAGS = ("amx_tile", "amx_bf16")
MAX_ROWS = 32  # rows per call (two AMX row tiles; two chunks of 16 on AVX-512)
LANES, GROUP = 16, 32  # output channels per block; int4 group along K (GGUF's Q4_1 block)


def available() -> bool:
    return _library() is not None


def wanted() -> bool:
    """The kernels should load here: the CPU has what they need and they are not turned off.
    Then `available()` False means the build or load failed (logged)."""
    return native.enabled() and not _missing_cpu_flags()


def _missing_cpu_flags() -> list[str]:
    flags = _cpu_flags()
    return [f for f in CPU_FLAGS if f not in flags]


@functools.cache
def _library() -> ctypes.CDLL | None:
    if not native.enabled():
        log.info("native kernels off (LLMAAS_NATIVE_KERNELS=0)")
        return None
    if missing := _missing_cpu_flags():
        log.info("native kernels off: the CPU lacks %s", ", ".join(missing))
        return None
    lib = native.load("native kernels", "llmaas-kernels", SOURCES, CFLAGS, HEADERS)
    if lib is None:
        return None
    ptr, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    signatures = {
        "qgemm_q4": [ptr, i64, i64, ptr, ptr, i64, ptr, i32],
        "qgemm_q8": [ptr, i64, i64, ptr, ptr, i64, ptr, i32],
        "rope_write_kv": [ptr, i64, i64, i64, i64, ptr, ptr, ptr, ptr, i64, ptr, ptr, ptr],
        "decode_attention": [ptr, i64, i64, i64, i64, ptr, ptr, i64, ptr, ptr]
        + [ctypes.c_float, ptr, ptr],
        "rms_norm": [ptr, i64, i64, ptr, ctypes.c_float, ptr],
        "silu_mul": [ptr, i64, i64, ptr],
    }
    for name, argtypes in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = ctypes.c_int, argtypes
    return lib


@functools.cache
def amx() -> bool:
    """The GEMM runs on AMX tiles (else on AVX-512 BF16)."""
    if _library() is None or os.environ.get("LLMAAS_NATIVE_AMX", "1") == "0":
        return False
    if missing := [f for f in AMX_FLAGS if f not in _cpu_flags()]:
        log.info("native GEMM on AVX-512 BF16: the CPU lacks %s", ", ".join(missing))
        return False
    if _library().qgemm_init() != 0:
        log.warning("native GEMM on AVX-512 BF16: the OS refused the AMX tile state")
        return False
    return True


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


@dataclass(slots=True)
class PackedWeight:
    """A linear's weight in the kernels' layout (see qgemm.c)."""

    mode: str  # int4 | int8
    qweight: torch.Tensor
    scales: torch.Tensor
    out_features: int
    in_features: int

    @property
    def padded_out(self) -> int:
        return -(-self.out_features // LANES) * LANES


def pack_int4(w: torch.Tensor) -> PackedWeight:
    """w [N, K] -> q = round((w - low) / scale) in 0..15 per group of 32 along K, with the
    bf16-rounded scale and low the kernel multiplies by."""
    N, K = w.shape
    if K % GROUP:
        raise ValueError(f"int4 needs in_features divisible by {GROUP}, got {K}")
    n_pad, G = -(-N // LANES) * LANES, K // GROUP
    g = F.pad(w.float(), (0, 0, 0, n_pad - N)).reshape(n_pad, G, GROUP)
    low = g.amin(-1).bfloat16().float()
    scale = ((g.amax(-1) - low) / 15).clamp(min=1e-8).bfloat16().float()
    q = torch.round((g - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.uint8)
    q = q.reshape(n_pad // LANES, LANES, G, GROUP // 2, 2)  # [block, lane, group, pair, 2]
    packed = (q[..., 0] | (q[..., 1] << 4)).permute(0, 2, 3, 1).contiguous()
    scales = torch.stack([scale, low], dim=-1).reshape(n_pad // LANES, LANES, G, 2)
    scales = scales.permute(0, 2, 3, 1).contiguous().bfloat16()  # [block, group, 2, lane]
    return PackedWeight("int4", packed, scales, N, K)


def pack_int8(w: torch.Tensor) -> PackedWeight:
    """w [N, K] -> symmetric int8 per output channel (the lm_head: Q8_0-like quality)."""
    N, K = w.shape
    if K % GROUP:
        raise ValueError(f"int8 needs in_features divisible by {GROUP}, got {K}")
    n_pad = -(-N // LANES) * LANES
    wf = F.pad(w.float(), (0, 0, 0, n_pad - N))
    scale = wf.abs().amax(dim=1).clamp(min=1e-8) / 127.0
    q = torch.round(wf / scale[:, None]).clamp(-127, 127).to(torch.int8)
    q = q.reshape(n_pad // LANES, LANES, K // 2, 2)  # [block, lane, pair, 2]
    packed = q.permute(0, 2, 1, 3).contiguous()  # [block, pair, lane, 2]
    return PackedWeight("int8", packed, scale.contiguous(), N, K)


def linear(x2: torch.Tensor, weight: PackedWeight, *, use_amx: bool | None = None) -> torch.Tensor:
    """x2: bf16 [M, K] -> bf16 [M, N] (no bias). use_amx: default `amx()`."""
    lib = _lib()
    _check_bf16(x2)
    x2 = x2.contiguous()
    M = x2.shape[0]
    if use_amx is None:
        use_amx = amx()
    elif use_amx and not amx():
        raise RuntimeError("AMX is not available here")
    if M > MAX_ROWS:
        raise ValueError(f"at most {MAX_ROWS} rows per call, got {M}")
    y = torch.empty((M, weight.padded_out), dtype=torch.bfloat16)
    fn = lib.qgemm_q4 if weight.mode == "int4" else lib.qgemm_q8
    rc = fn(
        x2.data_ptr(),
        M,
        weight.in_features,
        weight.qweight.data_ptr(),
        weight.scales.data_ptr(),
        weight.padded_out,
        y.data_ptr(),
        int(use_amx),
    )
    if rc == -2:
        raise MemoryError(f"qgemm_{weight.mode}: no buffer for K={weight.in_features}")
    if rc:
        raise ValueError(f"qgemm_{weight.mode} refused shapes M={M} K={weight.in_features}")
    return y if weight.padded_out == weight.out_features else y[:, : weight.out_features]


# Limits of decode_attention (decode.c): head_dim a multiple of 16 up to 128, at most 8 query
# heads per KV head.
def supports_attention(n_heads: int, n_kv: int, head_dim: int) -> bool:
    return head_dim % 16 == 0 and head_dim <= 128 and n_heads % n_kv == 0 and n_heads // n_kv <= 8


def rope_write_kv(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    kv: tuple[torch.Tensor, torch.Tensor],
    slots: torch.Tensor,
    positions: torch.Tensor,
    n_heads: int,
    n_kv: int,
) -> torch.Tensor:
    """One token per row: rotates q and k (rotate-half, `sin` with its first half negated),
    writes k and v into the layer's caches [slots, n_kv, max_len, D] at (slot, position).
    qkv bf16 [B, (n_heads + 2 n_kv) * D]; cos, sin bf16 [B, D]; slots, positions int64 [B].
    Returns the rotated q, bf16 [B, n_heads, D]."""
    k_cache, v_cache = kv
    B, D = qkv.shape[0], k_cache.shape[-1]
    _check_bf16(qkv, cos, sin, k_cache, v_cache)
    if qkv.shape[1] != (n_heads + 2 * n_kv) * D or not qkv.is_contiguous():
        raise ValueError(f"rope_write_kv: qkv must be contiguous [B, {(n_heads + 2 * n_kv) * D}]")
    q = torch.empty((B, n_heads, D), dtype=torch.bfloat16)
    rc = _lib().rope_write_kv(
        qkv.data_ptr(), B, n_heads, n_kv, D, cos.data_ptr(), sin.data_ptr(),
        k_cache.data_ptr(), v_cache.data_ptr(), k_cache.shape[2], slots.data_ptr(),
        positions.data_ptr(), q.data_ptr(),
    )  # fmt: skip
    if rc:
        raise ValueError(f"a position is outside the cache (max_len {k_cache.shape[2]})")
    return q


def decode_attention(
    q: torch.Tensor,
    kv: tuple[torch.Tensor, torch.Tensor],
    slots: torch.Tensor,
    lengths: torch.Tensor,
    n_kv: int,
    scratch: torch.Tensor,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(D)) v over cache positions 0..lengths[b]-1 of slots[b], GQA.
    q bf16 [B, H, D]; scratch fp32 with >= B * H * max_len elements. -> bf16 [B, H * D]."""
    k_cache, v_cache = kv
    B, H, D = q.shape
    _check_bf16(q, k_cache, v_cache)
    if scratch.numel() < B * H * k_cache.shape[2]:
        raise ValueError("decode_attention: scratch too small")
    out = torch.empty((B, H * D), dtype=torch.bfloat16)
    rc = _lib().decode_attention(
        q.data_ptr(), B, H, n_kv, D, k_cache.data_ptr(), v_cache.data_ptr(),
        k_cache.shape[2], slots.data_ptr(), lengths.data_ptr(), D**-0.5,
        scratch.data_ptr(), out.data_ptr(),
    )  # fmt: skip
    if rc:
        raise ValueError("decode_attention: unsupported shape or a length outside the cache")
    return out


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """bf16 x [..., D] -> weight * bf16(x / rms(x)) (normalised in fp32), bf16 [..., D]."""
    D = x.shape[-1]
    _check_bf16(x, weight)
    if weight.numel() != D or D % 16:
        raise ValueError(f"rms_norm: weight of {weight.numel()} for rows of {D} (a multiple of 16)")
    x = x.contiguous()
    out = torch.empty_like(x)
    _lib().rms_norm(x.data_ptr(), x.numel() // D, D, weight.data_ptr(), eps, out.data_ptr())
    return out


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """bf16 [..., 2I] (gate, up) -> silu(gate) * up, bf16 [..., I]."""
    _check_bf16(gate_up)
    width = gate_up.shape[-1] // 2
    if gate_up.shape[-1] != 2 * width or width % 16:
        raise ValueError(f"silu_mul: rows of {gate_up.shape[-1]}, not 2 x a multiple of 16")
    gate_up = gate_up.contiguous()
    out = torch.empty((*gate_up.shape[:-1], width), dtype=torch.bfloat16)
    _lib().silu_mul(gate_up.data_ptr(), gate_up.numel() // (2 * width), width, out.data_ptr())
    return out


def _check_bf16(*tensors: torch.Tensor) -> None:
    # The C side reads raw bf16 memory: any other dtype would be read as garbage.
    if any(t.dtype != torch.bfloat16 or t.device.type != "cpu" for t in tensors):
        raise ValueError("the native kernels take bf16 tensors on the CPU")


def _lib() -> ctypes.CDLL:
    lib = _library()
    if lib is None:
        raise RuntimeError("native kernels are not available")
    return lib
