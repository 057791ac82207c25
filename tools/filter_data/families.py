"""Template families and their split: which phrasing is train, dev or test."""

from __future__ import annotations

SPLITS = ("train", "dev", "test")


def split_of(index: int, n: int) -> str:
    """Last item of a family list -> test, the one before -> dev, others train."""
    if index == n - 1:
        return "test"
    if index == n - 2:
        return "dev"
    return "train"


def items(seq: list, split: str) -> list:
    """The items of a family list that belong to ``split``."""
    return [x for i, x in enumerate(seq) if split_of(i, len(seq)) == split]
