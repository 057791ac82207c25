"""Keep the memory a check frees for the next check (glibc's allocator).

A long prompt's check builds arrays of a few MB (the learned layer's n-gram matrix is 6
orders x 8 bytes a character: 4.8 MB at 100 KB). glibc serves every allocation over its
mmap threshold (128 KB at first) from fresh pages and unmaps them on free, and gives the
top of its heap back past 128 KB free; so each long check faulted its pages in anew
(zeroed by the kernel), and the short checks after it ran on a cold heap. Measured with
``python -m tools.filter_bench --only 2KB 2KB_rules 100KB``: 100 KB p50 23.5 -> 21.7 ms,
and the rules alone at 2 KB p99 1.17 -> 0.94-1.0 ms.

The memory kept is bounded by the largest check's peak, which the filter's other limits
bound (``offload``: long prompts go to pool processes, each of which calls this too).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("llmaas.filter")

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: allocations up to it come from the heap
TRIM_THRESHOLD = 128 << 20  # free memory kept at the heap's top before giving it back
TOP_PAD = 16 << 20  # grown by this much at a time


def keep_freed_memory() -> bool:
    """Tune glibc's allocator as above; False (and nothing changed) without glibc."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):  # musl, macOS: no mallopt
        mallopt = None
    if mallopt is None:
        return False
    done = all(
        mallopt(option, value)
        for option, value in (
            (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
            (_M_TOP_PAD, TOP_PAD),
        )
    )
    if not done:
        log.info("glibc's mallopt refused a setting: the filter's heap keeps its defaults")
    return done
