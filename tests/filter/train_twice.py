"""Trains one tiny config twice, in two fresh processes side by side: reproducible training
must not hang on what one process happens to hold (hash seeds, caches, torch state), and
two cores finish both runs in the time of one."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def _train(args: list[str]) -> dict:
    from tools.train_filter import parse, train

    result = train(parse(args))
    return {"digest": result["digest"], "semantic": result["semantic"] is not None}


def train_twice(first: list[str], second: list[str]) -> tuple[dict, dict]:
    """The summaries of `train(parse(first))` and `train(parse(second))`, each in its own
    process (the two need distinct `--out` paths)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        a, b = pool.submit(_train, first), pool.submit(_train, second)
        return a.result(), b.result()
