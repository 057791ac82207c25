"""Spaced-out letters joined back ("i g n o r e" -> "ignore") and stop words dropped, on
the token list of a prompt: the step of :func:`mesh.filter.normalize.normalize` after
tokenising, kept C-level whatever the number of runs."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from itertools import accumulate, chain, compress, count, cycle, filterfalse, repeat
from operator import add

# Dropped before the rules count distances, so "ignore all of the previous
# instructions" and "ignore all previous instructions" are the same distance.
STOPWORDS = frozenset(
    word
    for group in (
        "the a an of to be this that these those t s d l",  # en (+ elided letters)
        "le la les des de du un une",  # fr
        "el los las del una lo",  # es
        "der die das den dem des ein eine einen",  # de
        "il gli di della delle dei degli uno",  # it
        "che è e et que qui y und zu",  # conjunctions/relatives that only pad distances
    )
    for word in group.split()
)
MAX_JOINED = 256  # cap on one spaced-out run, so "a b c ..." x 50k stays cheap


# On the tokens joined by single spaces (tokens hold no spaces): a run of four single-
# character tokens, and (padded with a space each side) the maximal runs of four or more.
# Both start with a literal space, so the engine skips to candidates with a fast scan.
_HAS_RUN_RE = re.compile(" [^ ] [^ ] [^ ] [^ ] ")
_RUN_SPLIT_RE = re.compile(" ([^ ](?: [^ ]){3,})(?= )")
_is_stopword = STOPWORDS.__contains__
# Words written as two tokens that the lexicon lists as one: Turkish "yok say(ın)" and
# "göz ardı et" ("ignore"), as folded; joined before anything counts distances.
_COMPOUND_HEADS = {"yok": ("say",), "göz": ("ardi",)}


def join_compounds(tokens: list[str]) -> list[str]:
    """``tokens`` with each two-token compound joined ("yok", "say" -> "yoksay")."""
    if not any(head in tokens for head in _COMPOUND_HEADS):
        return tokens
    out: list[str] = []
    pairs = zip(tokens, [*tokens[1:], ""], strict=True)
    for word, following in pairs:
        tails = _COMPOUND_HEADS.get(word)
        if tails and following.startswith(tails):
            out.append(word + following)
            next(pairs, None)  # the tail is in the compound
        else:
            out.append(word)
    return out


def indices_where(flags: Iterable[object]) -> list[int]:
    """Positions of the true flags (``compress`` over a counter: one C-level pass; as
    ``hits.indices_where``, which this module cannot import: hits needs normalize)."""
    return list(compress(count(), flags))


def join_spaced(words: list[str]) -> tuple[list[str], set[int]]:
    """Join runs of >= 4 single-letter tokens ("i g n o r e" → "ignore") and drop stop
    words; returns the tokens and the indices of the joined ones (never dropped).

    Everything is C-level, whatever the number of runs: one regex search rules out text
    without runs; otherwise one regex ``split`` of the space-joined tokens gives the runs
    (spaces removed with ``str.replace``) and, by counting spaces, how many tokens each
    part holds; the tokens between runs are sliced out of ``words``, stop words filtered
    out with ``filterfalse``, and all interleaved with ``chain``.
    """
    line = f" {' '.join(words)} "
    if _HAS_RUN_RE.search(line) is None:
        return list(filterfalse(_is_stopword, words)), set()
    parts = _RUN_SPLIT_RE.split(line)  # between[0], run[0], between[1], ..., between[-1]
    runs = list(map(str.replace, parts[1::2], repeat(" "), repeat("")))
    if max(map(len, runs)) > MAX_JOINED:
        runs = [r[:MAX_JOINED] for r in runs]  # the rest of an over-long run is dropped
    if len(runs) >= _MANY_RUNS:
        return _join_many(words, parts, runs)
    # Tokens per part: one per space in a "between" part (each follows a space; the last
    # part also holds the closing pad), one more than its spaces in a run.
    counts = list(map(add, map(str.count, parts, repeat(" ")), cycle((0, 1))))
    counts[-1] -= 1
    ends = list(accumulate(counts))
    cuts = map(slice, [0, *ends[1::2]], ends[0::2])
    between = list(map(list, map(filterfalse, repeat(_is_stopword), map(words.__getitem__, cuts))))
    return _interleave(between, runs)


_MANY_RUNS = 64  # from this many runs on, no list per part (their allocation dominates)


def _join_many(words: list[str], parts: list[str], runs: list[str]) -> tuple[list[str], set[int]]:
    """:func:`join_spaced` for a flood of runs, over flat lists only: the line is rebuilt
    with each run joined behind a marker (a character no token holds, so no joined run
    is taken for a stop word) and split once; after the stop words go, the marked
    tokens are found and replaced by their runs."""
    parts[1::2] = map(add, repeat(" " + _RUN_MARK), runs)  # "between" parts start with " "
    kept = list(filterfalse(_is_stopword, "".join(parts).split()))
    at = indices_where(map(str.startswith, kept, repeat(_RUN_MARK)))
    deque(map(kept.__setitem__, at, runs), maxlen=0)
    return kept, set(at)


_RUN_MARK = "\x00"  # tokens are word characters: never this


def _interleave(between: list[list[str]], runs: list[str]) -> tuple[list[str], set[int]]:
    # Output: between[0], runs[0], between[1], runs[1], ..., between[-1].
    at = list(map(add, accumulate(map(len, between[:-1])), range(len(runs))))
    out = list(chain.from_iterable(chain.from_iterable(zip(between, zip(runs), strict=False))))
    out += between[-1]
    return out, set(at)
