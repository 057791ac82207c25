"""Keeps a running mesh up: restarts a child that died, with backoff."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from tools.launcher.handle import MeshHandle


@dataclass(slots=True)
class Supervisor:
    """Keeps the mesh up: a child that dies is restarted (same command, port, environment)
    after a backoff that doubles per quick crash (initial_backoff_s .. max_backoff_s) and
    resets once the child has run healthy_after_s; each death is reported with its last log
    lines. `step()` is one pass (tests drive it, with their own clock); `run()` loops."""

    handle: MeshHandle
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    healthy_after_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    out: TextIO = field(default_factory=lambda: sys.stderr)
    restarts: dict[str, int] = field(default_factory=dict)  # per child, for reports and tests
    _held: set[str] = field(default_factory=set)
    _started: dict[str, float] = field(default_factory=dict)
    _backoff: dict[str, float] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)  # dead children: when to restart
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, name: str) -> None:
        """Leaves child `name` down if it dies (until `release`): an operator's or a test's
        planned outage."""
        with self._lock:
            self._held.add(name)

    def release(self, name: str) -> None:
        with self._lock:
            self._held.discard(name)

    def next_delay(self, name: str) -> float | None:
        """Seconds until a dead child's restart; None when it is not waiting for one."""
        due = self._due.get(name)
        return None if due is None else max(0.0, due - self.clock())

    def step(self) -> None:
        with self._lock:
            now = self.clock()
            for name, proc in list(self.handle.processes.items()):
                started = self._started.setdefault(name, now)
                if name in self._due:
                    if now >= self._due[name] and name not in self._held:
                        self._restart(name, now)
                    continue
                rc = proc.poll()
                if rc is None:
                    if now - started >= self.healthy_after_s:
                        self._backoff.pop(name, None)  # healthy again: next crash, 1 s
                    continue
                self._died(name, proc.pid, rc, now - started, now)

    def _died(self, name: str, pid: int, rc: int, ran_s: float, now: float) -> None:
        if ran_s >= self.healthy_after_s:
            self._backoff.pop(name, None)
        delay = self._backoff.get(name, self.initial_backoff_s)
        self._backoff[name] = min(delay * 2, self.max_backoff_s)
        self._due[name] = now + delay
        held = " (held: not restarted until released)" if name in self._held else ""
        print(
            f"\n{name} (pid {pid}) exited with code {rc} after {ran_s:.1f}s; restarting it "
            f"in {delay:.0f}s{held}, the rest keeps serving. Last log lines:\n"
            f"{self.handle.log_tail(name)}",
            file=self.out,
            flush=True,
        )

    def _restart(self, name: str, now: float) -> None:
        try:
            proc = self.handle.restart(name)
        except OSError as exc:  # e.g. out of processes: try again after the next backoff
            delay = self._backoff.get(name, self.initial_backoff_s)
            self._backoff[name] = min(delay * 2, self.max_backoff_s)
            self._due[name] = now + delay
            print(f"{name}: restart failed ({exc}); next try in {delay:.0f}s", file=self.out)
            return
        del self._due[name]
        self._started[name] = now
        self.restarts[name] = self.restarts.get(name, 0) + 1
        print(f"{name} restarted (pid {proc.pid})", file=self.out, flush=True)

    def run(self, stop: threading.Event, interval_s: float = 0.5) -> None:
        """Supervises until `stop` is set."""
        while not stop.wait(interval_s):
            self.step()
