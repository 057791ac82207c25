"""How long a 4 MiB prompt check stalls an asyncio loop: inline, in a thread, in a process.

    python tools/dev/filter_loop_stall.py

A probe task sleeps 1 ms in a loop; the longest gap it sees while the check
runs is the stall every other request (and health probe) would see. The
pattern passes hold the GIL, so a thread helps little; a process does.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

if __package__ in (None, ""):  # `python tools/dev/filter_loop_stall.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mesh.filter.engine import analyse  # noqa: E402

PROMPT = " ".join(str(i) for i in range(700_000))[: 4 * 1024 * 1024]


async def _probe(stop: asyncio.Event, gaps: list[float]) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        gaps.append(time.perf_counter() - t)


async def stall_ms(executor: Executor | None) -> float:
    gaps: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(_probe(stop, gaps))
    await asyncio.sleep(0.05)
    if executor is None:
        analyse(PROMPT)
    else:
        await asyncio.get_running_loop().run_in_executor(executor, analyse, PROMPT)
    stop.set()
    await probe
    return 1000 * max(gaps)


async def main() -> None:
    print(f"inline:     longest loop stall {await stall_ms(None):7.1f} ms")
    with ThreadPoolExecutor(1) as threads:
        print(f"in a thread: longest loop stall {await stall_ms(threads):7.1f} ms")
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as procs:
        await asyncio.get_running_loop().run_in_executor(procs, analyse, "warm up")
        print(f"in a process: longest loop stall {await stall_ms(procs):7.1f} ms")


if __name__ == "__main__":
    asyncio.run(main())
