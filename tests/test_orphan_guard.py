"""Pool workers leave once the process that started them is gone (tools/orphan_guard.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tools.orphan_guard import exit_when_orphaned

ROOT = Path(__file__).resolve().parents[1]


def test_it_leaves_when_the_parent_changes_and_not_before() -> None:
    parents = iter([41, 41, 41, 1])
    left: list[int] = []
    exit_when_orphaned(41, getppid=lambda: next(parents), leave=left.append, interval=0)
    assert left == [1]
    assert next(parents, None) is None  # asked until the parent changed, no longer


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split(")")[-1].split()[0] != "Z"


def test_a_pool_worker_stops_when_its_parent_is_killed() -> None:
    parent = textwrap.dedent(
        """
        import multiprocessing, os, sys, time
        from concurrent.futures import ProcessPoolExecutor
        from tools.orphan_guard import watch_parent

        if __name__ == "__main__":
            ctx = multiprocessing.get_context("spawn")
            pool = ProcessPoolExecutor(1, mp_context=ctx, initializer=watch_parent,
                                       initargs=(os.getpid(),))
            print(pool.submit(os.getpid).result(), flush=True)
            pool.submit(time.sleep, 600)
            time.sleep(600)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", parent], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    worker = 0
    try:
        worker = int(proc.stdout.readline())
        assert _alive(worker)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        for _ in range(600):  # bounded: the worker checks its parent every second
            if not _alive(worker):
                break
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        proc.kill()
        proc.wait()
        if worker and _alive(worker):  # the guard failed: do not leave the worker behind
            os.kill(worker, signal.SIGKILL)
