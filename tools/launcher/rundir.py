"""The run directory: its lock (one mesh per directory), private files and the secrets
`make run` makes once (admin key, mesh token)."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from tools.launcher.errors import MeshLockedError

LOCK_NAME = "mesh.lock"


def admin_key_file(run: Path) -> Path:
    return run / "secrets" / "admin-key"


def mesh_token_file(run: Path) -> Path:
    return run / "secrets" / "mesh-token"


def private_dir(path: Path) -> Path:
    """A directory only this user can read (0700), made if missing."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def read_or_make_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, written once (0600, created exclusively: never readable by
    others, not even for an instant); its directory 0700."""
    private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(make() + "\n")
    path.chmod(0o600)
    return path.read_text().strip()


def admin_key(base: Mapping[str, str], run: Path) -> str:
    """LLMAAS_ADMIN_KEY, else the embedded default's own admin key, made once (0600)."""
    if base.get("LLMAAS_ADMIN_KEY"):
        return base["LLMAAS_ADMIN_KEY"]
    return read_or_make_secret(
        admin_key_file(run), lambda: f"sk-llmaas-admin-{secrets.token_urlsafe(24)}"
    )


def mesh_token(base: Mapping[str, str], run: Path) -> str:
    """LLMAAS_MESH_TOKEN (the control plane's shared token in plain mode), else one made
    once in .run/secrets/mesh-token (0600)."""
    if base.get("LLMAAS_MESH_TOKEN"):
        return base["LLMAAS_MESH_TOKEN"]
    return read_or_make_secret(mesh_token_file(run), lambda: secrets.token_urlsafe(32))


def lock_run_dir(run: Path) -> int:
    """Takes `<run>/mesh.lock` (flock, held until the returned fd is closed) and writes this
    process's pid into it; MeshLockedError naming the holder's pid when another mesh has it.
    Only the run directory and the lock file are touched before the lock is ours."""
    private_dir(run)
    fd = os.open(run / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        raise MeshLockedError(
            f"another mesh is running from {run}, pid {holder}; stop it first, or set "
            "LLMAAS_RUN_DIR (and the ports) for a second one"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
