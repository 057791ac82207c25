"""C sources compiled once per machine into a cache folder and loaded with ctypes: the
worker's decode kernels (``worker/kernels``) and the filter's n-gram kernel
(``mesh/filter/ngram_kernel.py``). ``LLMAAS_NATIVE_KERNELS=0`` turns both off (their callers
keep torch's or numpy's way, with the same results).

The cache is ``LLMAAS_KERNEL_CACHE`` (default ``~/.cache/llmaas/kernels``); a library is
named by the digest of its sources and flags, so an edited source builds anew. Compiled
aside and renamed into place: processes starting together never load a half-written file.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def enabled() -> bool:
    return os.environ.get("LLMAAS_NATIVE_KERNELS", "1") != "0"


def load(
    what: str,
    name: str,
    sources: Sequence[Path],
    cflags: Sequence[str],
    headers: Sequence[Path] = (),
) -> ctypes.CDLL | None:
    """The library of ``sources`` (see ``compiled``), or None, logged once per caller as
    "<what> off: why" (no compiler, a failed build or load)."""
    try:
        target = compiled(name, sources, cflags, headers)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("%s off: %s", what, getattr(exc, "stderr", None) or exc)
        return None
    log.info("%s: %s", what, target)
    return lib


def compiled(
    name: str, sources: Sequence[Path], cflags: Sequence[str], headers: Sequence[Path] = ()
) -> Path:
    """The shared library for these sources and flags, compiled on first use. Raises
    FileNotFoundError without a C compiler, subprocess errors when the build fails."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise FileNotFoundError("no C compiler (cc or gcc) on PATH")
    source = b"".join(path.read_bytes() for path in [*sources, *headers])
    digest = hashlib.sha256(source + " ".join(cflags).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("LLMAAS_KERNEL_CACHE") or Path.home() / ".cache/llmaas/kernels")
    target = cache / f"{name}-{digest}.so"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        out = Path(tmp) / target.name
        cmd = [cc, *cflags, "-shared", "-fPIC", "-o", str(out), *map(str, sources)]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)
        out.replace(target)
    return target
