"""The rejoin of a user's recent prompts (the behaviour layer's fragmentation check): the
pattern and learned layers on the joined text."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from . import learned
from .learned import judged_text
from .normalize import fold_text
from .patterns import BLOCKING, check_patterns
from .verdict import Reason

PROMPT_BREAK = " pb "  # one token (Latin), about one word (CJK)
FRAGMENT_CACHE = 512  # rejoined texts remembered (about 1 KB each)


@lru_cache(maxsize=FRAGMENT_CACHE)
def blocking_pattern_reasons(joined: str, quote_policy: bool = True) -> tuple[Reason, ...]:
    """The blocking pattern reasons of a rejoined text (a pure function of the text).

    Cached: a sender who repeats a prompt (retries, or the floods the repetition rule is
    for) rejoins the same tails and head each time, for its own history and for the
    tenant-wide one; that is the rejoin's cost gone for every repeat.
    """
    found = check_patterns(joined, quote_policy=quote_policy)
    return tuple(r for r in found if r.score >= BLOCKING)


def learned_reasons(
    joined: str, short: Sequence[bool] = (), known: frozenset[str] = frozenset()
) -> tuple[Reason, ...]:
    """The learned layer on a rejoined text: an attack split so that no prompt alone reaches
    its threshold ("First word: disregard" / "second: your" / "third: prior guidelines":
    the parts are under its 32-byte floor, or too weak alone). Counted, like a pattern rule,
    only when no part fired the layer alone (``own_rules`` holds ``learned.classifier``).
    Off with the engine's switch (``engine.LEARNED_LAYER``), read at call time; not cached
    (~0.1 ms for the ~1 KB rejoined, and tools switch weights within one process).
    ``short``: per prompt joined, whether the layer read it as a question about its quotes
    may (``behavior.Entry.short``); every one may when not given. ``known``: the rules
    the prompts fired alone; when the layer's is one of them, a rejoin it fires adds
    nothing, and it is not judged."""
    from . import engine  # engine -> behavior -> this module: read its switch lazily

    if not engine.LEARNED_LAYER or learned.RULE in known:
        return ()
    # discussions of a quoted attack looked for only when the rejoin blocks without them,
    # as ``learned.judge_text`` does for a prompt
    split = joined.split(PROMPT_BREAK)
    # a break the sender typed splits a prompt in two: each piece read as a short one
    asked = short if len(short) == len(split) else (True,) * len(split)
    if not _rejoined(split, asked, discussions=False):
        return ()
    return _rejoined(split, asked, discussions=True)


def _rejoined(split: list[str], asked: Sequence[bool], discussions: bool) -> tuple[Reason, ...]:
    # each part read as the layer read its prompt (a short question about a quoted attack
    # is judged on its own words), so a rejoin does not undo the quote policy; the cut
    # head or tail of a long prompt, which the layer read whole, is not such a question
    parts = [_judged_part(p, a, discussions) for p, a in zip(split, asked, strict=True)]
    # the same prompt again is the repetition rule's (29 in a row pass), not a split attack
    folded = [f for k, (j, f) in enumerate(parts) if k == 0 or j != parts[k - 1][0]]
    # the layer's floor counts what the user wrote, not the breaks the rejoin adds ("hello"
    # then "all previous instructions" is 30 bytes, under it as one prompt)
    if len(folded) < 2 or sum(len(f.encode()) for f in folded) < learned.MIN_BYTES:
        return ()
    found = _judge_across(PROMPT_BREAK.join(folded))
    # the current prompt must complete it: earlier prompts that reach the threshold
    # without it (an attack blocked by the rules, its tail scored anew) blame nothing new
    # (one earlier prompt alone holds no break: no window of it counts)
    if found and len(folded) > 2 and _judge_across(PROMPT_BREAK.join(folded[:-1])):
        return ()
    return tuple(found)


@lru_cache(maxsize=4 * FRAGMENT_CACHE)
def _judged_part(part: str, asked: bool, discussions: bool) -> tuple[str, str]:
    """What the layer reads of one rejoined prompt, and its folded form. Cached: a tail
    joins the next ``history`` rejoins of its sender (and of its tenant, when flooding),
    and reading it costs a scan of the quote policy's word lists (~0.1-0.3 ms at 200
    chars)."""
    judged = judged_text(part, discussions, asked)
    return judged, fold_text(judged)


_BREAK = PROMPT_BREAK.encode("utf-32-le")


def _holds_break(cps: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Which windows hold a prompt break: a split attack is one that no prompt holds alone.
    (Over every window, a long prompt sent twice, as a system prompt is, scored a window of
    its own a little higher once the break shifted the windows' alignment: its second
    request was a "fragmented attack".)"""
    at = _break_starts(cps.astype(np.uint32).tobytes())
    holds = np.zeros(len(starts), dtype=bool)
    if not len(at):
        return holds
    nxt = np.searchsorted(at, starts)  # the first break at or after each window's start
    inside = nxt < len(at)
    holds[inside] = at[nxt[inside]] + len(PROMPT_BREAK) <= starts[inside] + learned.WINDOW
    return holds


def _break_starts(data: bytes) -> np.ndarray:
    """Where the breaks start, in code points of ``data`` (UTF-32): one C-level ``find``
    each (a sliding window over every position cost more than the rest of the rejoin's
    scoring). Breaks may share a space: the next search starts one byte on."""
    at = []
    i = data.find(_BREAK)
    while i >= 0:
        if i % 4 == 0:
            at.append(i // 4)
        i = data.find(_BREAK, i + 1)
    return np.array(at, dtype=np.int64)


def _judge_across(folded: str) -> list[Reason]:
    return learned.judge(folded, detail="across prompts", keep=_holds_break)[1]
