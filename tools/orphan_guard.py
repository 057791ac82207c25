"""Pool workers that stop when the process that started them is gone.

A killed ``python -m tools.train_filter --jobs 2`` left its pool's workers training on for
hours (2 GB each), slowing everything else on the machine: a worker's initializer
(``watch_parent``) now starts a thread that ends the worker once its parent has changed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


def exit_when_orphaned(
    parent: int,
    getppid: Callable[[], int] = os.getppid,
    leave: Callable[[int], object] = os._exit,
    interval: float = 1.0,
) -> None:
    """Return (through ``leave``) once this process's parent is no longer ``parent``."""
    while getppid() == parent:
        time.sleep(interval)
    leave(1)


def watch_parent(parent: int) -> None:
    """A pool initializer: ``initializer=watch_parent, initargs=(os.getpid(),)``."""
    threading.Thread(target=exit_when_orphaned, args=(parent,), daemon=True).start()
