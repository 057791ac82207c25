"""Lexicon hits: one :class:`Hit` per token that names a concept, or a :class:`Stream`
of them as parallel lists.

Why parallel lists: a 100 KB prompt can hold tens of thousands of hits, and the
passes that find, merge and filter them (``map``, ``compress``, ``zip``) run in C
over lists; a list of objects would need Python code per hit. :class:`Hit` tuples
are only built for the hits the automaton actually walks.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from functools import partial
from itertools import chain, compress, count, repeat
from operator import and_, eq, le, sub
from typing import NamedTuple

from .lexicon_index import Concepts


class Hit(NamedTuple):  # a tuple: built by the thousand, must be cheap
    pos: float
    token: str
    concepts: Concepts
    via: str = ""  # "", "leet", "spacing", "glued", "hyphens": how the token was recovered


_new_hit = partial(tuple.__new__, Hit)  # Hit from a 4-tuple, without Python-level code


class Stream(NamedTuple):
    """Hits as parallel lists (built and filtered with C-level passes).

    ``via`` is None when every hit has via "". Hit objects are only made for the
    hits the automaton actually walks (see :meth:`SequenceSet.run_stream`).
    """

    pos: list[float]
    tok: list[str]
    con: list[Concepts]
    via: list[str] | None = None

    def vias(self) -> Iterable[str]:
        return repeat("") if self.via is None else self.via

    def hits(self) -> list[Hit]:
        return list(map(_new_hit, zip(self.pos, self.tok, self.con, self.vias(), strict=False)))

    def select(self, mask: Iterable[object]) -> Stream:
        """The hits whose ``mask`` entry is true."""
        mask = bytes(mask) if not isinstance(mask, bytes | bytearray) else mask
        return Stream(
            list(compress(self.pos, mask)),
            list(compress(self.tok, mask)),
            list(compress(self.con, mask)),
            None if self.via is None else list(compress(self.via, mask)),
        )


EMPTY = Stream([], [], [], None)


def indices_where(flags: Iterable[bool]) -> list[int]:
    """Positions of the true flags (``compress`` over a counter: one C-level pass)."""
    return list(compress(range(1 << 62), flags))


def merge(parts: list[Stream]) -> Stream:
    """Concatenate, then stable-sort by position (the order ``list.sort`` gives hits)."""
    parts = [p for p in parts if p.tok]
    if len(parts) <= 1:
        return parts[0] if parts else EMPTY
    sizes = [len(p.tok) for p in parts]
    big = sizes.index(max(sizes))
    if (sum(sizes) - sizes[big]) * _INSERT_RATIO <= sizes[big]:
        return _insert_into(parts, big)
    pos = list(chain.from_iterable(p.pos for p in parts))
    tok = list(chain.from_iterable(p.tok for p in parts))
    con = list(chain.from_iterable(p.con for p in parts))
    via = None
    if any(p.via is not None for p in parts):
        via = list(
            chain.from_iterable(repeat("", len(p.tok)) if p.via is None else p.via for p in parts)
        )
    order = sorted(range(len(pos)), key=pos.__getitem__)
    return Stream(
        list(map(pos.__getitem__, order)),
        list(map(tok.__getitem__, order)),
        list(map(con.__getitem__, order)),
        None if via is None else list(map(via.__getitem__, order)),
    )


_INSERT_RATIO = 16  # up to 1/16 as many other hits as the largest part has: insert them


def _insert_into(parts: list[Stream], big: int) -> Stream:
    """:func:`merge` when one part holds nearly all the hits: the others are placed by
    binary search and the big part is copied in slices, instead of sorting everything.

    Each other hit goes before the big part's hits at its position if its part comes
    first, after them otherwise (what the stable sort does); hits with the same place
    keep the order of the sort (position, part, order in the part).
    """
    b = parts[big]
    placed = []  # (index in b, position, part, index in part)
    for pi, p in enumerate(parts):
        if pi != big:
            find = bisect_left if pi < big else bisect_right
            placed += zip(map(find, repeat(b.pos), p.pos), p.pos, repeat(pi), count())
    placed.sort()
    with_via = any(p.via is not None for p in parts)
    b_via = [""] * len(b.tok) if with_via and b.via is None else b.via
    pos: list[float] = []
    tok: list[str] = []
    con: list[Concepts] = []
    via: list[str] = []
    done = 0
    for at, x, pi, k in placed:
        p = parts[pi]
        pos += b.pos[done:at]
        tok += b.tok[done:at]
        con += b.con[done:at]
        pos.append(x)
        tok.append(p.tok[k])
        con.append(p.con[k])
        if with_via:
            via += b_via[done:at]
            via.append("" if p.via is None else p.via[k])
        done = at
    pos += b.pos[done:]
    tok += b.tok[done:]
    con += b.con[done:]
    if with_via:
        via += b_via[done:]
    return Stream(pos, tok, con, via if with_via else None)


def from_hits(hits: Iterable[tuple]) -> Stream:
    hits = list(hits)
    if not hits:
        return EMPTY
    pos, tok, con, via = (list(x) for x in zip(*hits, strict=True))
    return Stream(pos, tok, con, via)


def collapse_runs(hits: list[Hit]) -> list[Hit]:
    """Keep the first two and the last hit of a run of one repeated token.

    "ai ai ai ... ai" cannot advance any sequence further than two copies do,
    and without this a flood of one lexicon word costs work per copy.
    """
    if len(hits) < 4:
        return hits
    return collapse_stream(from_hits(hits)).hits()


_RUN_OF_4 = b"\x01\x01\x01"  # three "repeats the previous hit" marks: four equal hits
_RUN4_RE = re.compile(b"\x01{3,}")


def collapse_stream(s: Stream) -> Stream:
    """:func:`collapse_runs` on a stream, with C-level passes only.

    ``marks[j]`` is 1 when hit j+1 repeats hit j's token at most one position
    later; a run of 3+ ones is a run of 4+ hits, of which all but the first
    two and the last are dropped.
    """
    tok, pos = s.tok, s.pos
    if len(tok) < 4:
        return s
    same_token = bytes(map(eq, tok, tok[1:]))
    if _RUN_OF_4 not in same_token:  # cheap first pass: no run of 4 equal tokens
        return s
    distance = map(sub, pos[1:], pos)  # from each hit to the next
    adjacent = map(le, distance, repeat(1))  # ... at most one position on
    marks = bytes(map(and_, same_token, adjacent))
    if _RUN_OF_4 not in marks:
        return s
    keep = bytearray(b"\x01") * len(tok)
    for m in _RUN4_RE.finditer(marks):
        keep[m.start() + 2 : m.end()] = bytes(m.end() - m.start() - 2)
    return s.select(keep)
