"""C sources compiled once per machine into a cache folder and loaded with ctypes: the
worker's decode kernels (``worker/kernels``) and the filter's n-gram kernel
(``mesh/filter/ngram_kernel.py``).

The cache is ``LLMAAS_KERNEL_CACHE`` (default ``~/.cache/llmaas/kernels``); a library is
named by the digest of its sources and flags, so an edited source builds anew. Compiled
aside and renamed into place: processes starting together never load a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path


def compiled(name: str, sources: Sequence[Path], cflags: Sequence[str], headers=()) -> Path:
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
