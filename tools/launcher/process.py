"""One child process: started in its own session (logs and pid file in the run directory),
signalled as a whole process group, stopped with a SIGKILL deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from tools.launcher.rundir import write_private


def signal_group(proc: subprocess.Popen, sig: int) -> None:
    """`sig` to the child's whole process group (its own session: pgid == pid). A reaped
    child's group is signalled too, for grandchildren it left behind; a group that no longer
    exists is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def wait_all(procs: list[subprocess.Popen], until: float, hurry: threading.Event) -> None:
    while any(p.poll() is None for p in procs) and time.monotonic() < until:
        if hurry.is_set():
            return
        time.sleep(0.05)


def stop_group(proc: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM to the child's process group, SIGKILL after timeout_s; reaped on return."""
    if proc.poll() is not None:
        return  # reaped already: its pid may belong to someone else by now
    signal_group(proc, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout_s)
    signal_group(proc, signal.SIGKILL)
    proc.wait()


def spawn(
    run: Path, name: str, cmd: list[str], env: Mapping[str, str], cwd: Path
) -> subprocess.Popen:
    """One child: log to .run/logs/<name>.log (0600), PID in .run/<name>.pid."""
    fd = os.open(run / "logs" / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        # Own session: Ctrl-C reaches only us, we stop children in order, and a child's
        # whole process group can be signalled (grandchildren included).
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    write_private(run / f"{name}.pid", f"{proc.pid}\n")
    return proc
