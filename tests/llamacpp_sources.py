"""llama.cpp's own sources, as vendored in the `llama-cpp-python` sdist, for tests that check
our code against theirs (published chat templates, `convert_hf_to_gguf.py`, `gguf-py`).

The sdist is downloaded once with pip (`pip download --no-deps --no-binary :all:`) into
`~/.cache/llmaas/llamacpp/` (LLMAAS_CACHE_DIR moves `~/.cache/llmaas`), and the parts tests
read are extracted beside it. When pip cannot reach a registry the calling test is skipped,
saying so. Nothing else is installed: llama.cpp's Python runs from the extracted tree.

    root = llamacpp_root()                     # .../vendor/llama.cpp
    text = published_template("Qwen-Qwen3-0.6B")
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

VERSION = "0.3.36"
SDIST = f"llama_cpp_python-{VERSION}.tar.gz"
VENDOR = f"llama_cpp_python-{VERSION}/vendor/llama.cpp/"
# What is extracted, relative to vendor/llama.cpp/: the converter and its packages, the
# published chat templates. Top-level files (convert_hf_to_gguf.py, ...) are always taken.
EXTRACT_DIRS = ("conversion/", "gguf-py/", "models/templates/")
DOWNLOAD_TIMEOUT_S = 600


def cache_dir() -> Path:
    base = os.environ.get("LLMAAS_CACHE_DIR") or Path.home() / ".cache" / "llmaas"
    return Path(base) / "llamacpp"


def llamacpp_root() -> Path:
    """The extracted `vendor/llama.cpp` directory (downloading the sdist the first time);
    skips the calling test when the sdist cannot be had."""
    cache = cache_dir()
    root = cache / f"llama.cpp-{VERSION}"
    if (root / ".complete").exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:  # tests in parallel: one download
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / ".complete").exists():
            _extract(_download(cache), root)
    return root


def published_template(name: str) -> str:
    """models/templates/<name>.jinja, e.g. "Qwen-Qwen3-0.6B"."""
    path = llamacpp_root() / "models" / "templates" / f"{name}.jinja"
    if not path.exists():
        raise FileNotFoundError(f"llama.cpp {VERSION} has no published template {name!r}")
    return path.read_text(encoding="utf-8")


def _download(cache: Path) -> Path:
    sdist = cache / SDIST
    if sdist.exists():
        return sdist
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
    cmd += [f"llama-cpp-python=={VERSION}", "-d", str(cache)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip could not download the llama-cpp-python {VERSION} sdist in time")
    if done.returncode != 0 or not sdist.exists():
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        pytest.skip(f"pip could not download the llama-cpp-python {VERSION} sdist: {last[0]}")
    return sdist


def _extract(sdist: Path, root: Path) -> None:
    """The wanted members of vendor/llama.cpp/ into `root`, then a `.complete` marker."""
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.name.startswith(VENDOR) or not member.isfile():
                continue
            rel = member.name[len(VENDOR) :]
            if "/" in rel and not rel.startswith(EXTRACT_DIRS):
                continue
            member.name = rel
            tar.extract(member, root, filter="data")
    (root / ".complete").write_text(VERSION)
