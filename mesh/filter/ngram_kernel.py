"""The learned layer's two passes in C, when a C compiler is here: ``prepared.prepare``
(``native/prepare.c``) and ``learned.Model.window_logits`` (``native/ngrams.c``).

The numpy versions make ~60 numpy calls per text, and on the few hundred characters a
prompt's head or a rejoin holds, their fixed cost was most of the layer's time (~75 µs of
~100 µs at 150 characters). The kernels do the same steps in one pass each, in the same
order, so their output is numpy's bit for bit (``tests/filter/test_ngram_kernel.py``
compares them on held-out texts and on random ones). Without a compiler, or with
``LLMAAS_NATIVE_KERNELS=0``, both return None and numpy does the work (logged once).
"""

from __future__ import annotations

import ctypes
import functools
import logging
from pathlib import Path

import numpy as np

from mesh import native

log = logging.getLogger(__name__)
SOURCES = [Path(__file__).parent / "native" / name for name in ("prepare.c", "ngrams.c")]
CFLAGS = ("-O2",)  # portable: no CPU-specific instructions, the loop is scalar hashing


@functools.cache
def _library() -> ctypes.CDLL | None:
    if not native.enabled():
        log.info("filter kernels off (LLMAAS_NATIVE_KERNELS=0): numpy computes the layer")
        return None
    lib = native.load("filter kernels (numpy computes the layer)", "llmaas-filter", SOURCES, CFLAGS)
    if lib is None:
        return None
    ptr, i64, u64, f64 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_uint64, ctypes.c_double
    lib.ngram_window_logits.restype = ctypes.c_int
    lib.ngram_window_logits.argtypes = [ptr, i64, ptr, i64, ptr, i64, u64, u64, u64]
    lib.ngram_window_logits.argtypes += [ptr, ptr, i64, f64, f64, ptr]
    lib.prepare_cps.restype = i64
    lib.prepare_cps.argtypes = [ptr, i64, ptr, i64, ptr, i64, ptr, i64, i64, i64, i64, ptr, ptr]
    return lib


def available() -> bool:
    return _library() is not None


def prepare(
    raw: bytes,
    kinds: np.ndarray,
    classes: np.ndarray,
    leet_map: np.ndarray,
    min_hex_run: int,
    min_b64_run: int,
    max_run: int,
) -> np.ndarray | None:
    """``prepared.prepare``'s code points (int64) of ``raw`` (UTF-32-LE, the padded folded
    text), or None when the kernel is not available. The tables are ``prepared._KIND`` and
    ``leet_fold``'s."""
    lib = _library()
    if lib is None:
        return None
    n = len(raw) // 4
    out = np.empty(n, dtype=np.int64)
    scratch = np.empty(n, dtype=np.uint8)
    m = lib.prepare_cps(
        raw,
        n,
        kinds.ctypes.data,
        len(kinds),
        classes.ctypes.data,
        len(classes),
        leet_map.ctypes.data,
        len(leet_map),
        min_hex_run,
        min_b64_run,
        max_run,
        out.ctypes.data,
        scratch.ctypes.data,
    )
    return out[:m]


@functools.cache
def _orders(orders: tuple[int, ...]) -> np.ndarray:
    return np.array(orders, dtype=np.int64)


def window_logits(
    cps: np.ndarray,
    weights: np.ndarray,
    bits: int,
    orders: tuple[int, ...],
    hashing: tuple[int, int, int],
    starts: np.ndarray,
    ends: np.ndarray,
    prior: float,
    bias: float,
) -> np.ndarray | None:
    """The logit of every window [starts, ends) of the prepared code points ``cps``, or None
    when the kernel is not available or the weights are not what it indexes unchecked
    (2**bits contiguous float32: a model built otherwise, in a test or a tool). ``hashing``:
    the prime, mix and salt constants as unsigned 64-bit integers."""
    lib = _library()
    if lib is None:
        return None
    if weights.dtype != np.float32 or not weights.flags.c_contiguous or len(weights) != 1 << bits:
        return None
    order_array = _orders(orders)
    cps = np.ascontiguousarray(cps, dtype=np.int64)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    out = np.empty(len(starts), dtype=np.float64)
    rc = lib.ngram_window_logits(
        cps.ctypes.data,
        len(cps),
        weights.ctypes.data,
        bits,
        order_array.ctypes.data,
        len(order_array),
        *hashing,
        starts.ctypes.data,
        ends.ctypes.data,
        len(starts),
        prior,
        bias,
        out.ctypes.data,
    )
    if rc != 0:
        raise RuntimeError(f"ngram_window_logits failed ({rc})")
    return out
