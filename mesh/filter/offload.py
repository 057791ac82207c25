"""Long prompts are analysed in a small process pool, off the serving event loop.

The sidecar's event loop also answers health probes and every other check. A
4 MiB prompt takes 0.6-0.9 s to analyse, and a thread does not help much: the
pattern passes are regexes and C-level scans that hold the GIL for long
stretches. Measured with ``python tools/filter_loop_stall.py`` (a 4 MiB prompt,
the loop's longest stall, 2 shared cores): inline 850-2,000 ms, in a thread
200-270 ms, in a process 5-10 ms.

So prompts of at least ``OFFLOAD_CHARS`` characters (about 7 ms of work) go to
a pool of ``workers`` spawned processes; shorter ones, nearly all traffic, are
analysed inline, which is cheaper than a round trip to another process. Only
the stateless :func:`~mesh.filter.engine.analyse` runs there; the behaviour
history stays in the serving process.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from . import engine
from .engine import Analysis
from .heap import keep_freed_memory
from .instructions import Span
from .tool_fields import ToolFields

OFFLOAD_CHARS = 64 * 1024
WORKERS = 2
PARENT_POLL_S = 1.0

_live: weakref.WeakSet[Analyser] = weakref.WeakSet()


def _init_worker(parent: int) -> None:
    # Ctrl-C reaches the whole process group: the serving process decides when to stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(
        target=_exit_with, args=(parent,), name="exit-with-parent", daemon=True
    ).start()
    gc.collect()
    gc.freeze()  # the rule tables, as in the sidecar (see service.serve)
    keep_freed_memory()


def _exit_with(parent: int) -> None:
    # A pool process waits on a queue whose ends it holds itself, so it never sees its
    # parent die (kill -9): it would live on. Polling the parent pid is portable.
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


def analyse_off_loop(
    prompt: str, tools: ToolFields = engine.NO_TOOLS, instructions: Sequence[Span] = ()
) -> Analysis:
    """Runs in a pool process."""
    return engine.analyse(prompt, tools, instructions)


class Analyser:
    """``await analyser.analyse(prompt)``: inline when short, in the pool when long."""

    def __init__(self, workers: int = WORKERS, offload_chars: int = OFFLOAD_CHARS) -> None:
        self.workers = workers
        self.offload_chars = offload_chars
        self._pool: ProcessPoolExecutor | None = None
        _live.add(self)

    def offloads(self, prompt: str, tools: ToolFields = engine.NO_TOOLS) -> bool:
        return len(prompt) + tools.num_chars >= self.offload_chars

    def start(self) -> None:
        """Spawns a pool process now (else on the first long prompt), rule tables built."""
        self._executor().submit(analyse_off_loop, "warm up")

    async def analyse(
        self, prompt: str, tools: ToolFields = engine.NO_TOOLS, instructions: Sequence[Span] = ()
    ) -> Analysis:
        """``instructions``: see ``engine.analyse``."""
        if not self.offloads(prompt, tools):
            return engine.analyse(prompt, tools, instructions)
        loop = asyncio.get_running_loop()
        args = (prompt, tools, instructions)
        try:
            return await loop.run_in_executor(self._executor(), analyse_off_loop, *args)
        except BrokenProcessPool:
            self._pool = None  # a pool process died (OOM kill?): the next prompt gets a new pool
            raise

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the serving process runs gRPC threads.
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )
        return self._pool

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def start_all() -> None:
    for analyser in list(_live):
        analyser.start()


def close_all() -> None:
    """Stops every pool of this process (the sidecar calls it on shutdown)."""
    for analyser in list(_live):
        analyser.close()
