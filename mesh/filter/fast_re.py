"""``re.compile`` with a first-character guard: the same matches, found sooner.

Python's regex engine skips ahead quickly only when every branch of a pattern starts with
a literal; the filter's word lists start with ``\\b`` or a lookbehind, so the engine tries
each of their dozens of branches at every position of the text. ``compile`` computes the
set of characters any match can start with and puts it in front as a lookahead
(``(?=[…])``): at a position where no branch can start, one class test fails instead of
every branch. A match consumes its first character, so where the guard fails no match
starts; where it passes the original pattern runs unchanged: ``search``, ``sub``,
``finditer``... give the same results (``tests/filter/test_fast_re.py`` checks every
pattern of the filter against the unguarded one on the corpora).

The guard is left off, and the plain pattern returned, when it cannot help or might not
hold: a pattern the engine already skips ahead on (a literal or character-set prefix), one
that can match the empty string, one whose first character may be anything (``.``,
``\\w``, a negated class, a back-reference), or one that changes its case flags inside.
"""

from __future__ import annotations

import re
from re import _compiler as _sre_compile  # type: ignore[attr-defined]
from re import _constants as _c  # type: ignore[attr-defined]
from re import _parser as _sre_parse  # type: ignore[attr-defined]

Ranges = list[tuple[int, int]]
_UNKNOWN = None  # the first character may be anything (or cannot be worked out)
# (plain, guarded) for every pattern given a guard: what the tests compare
GUARDED: list[tuple[re.Pattern[str], re.Pattern[str]]] = []


def compile(pattern: str, flags: int = 0) -> re.Pattern[str]:  # noqa: A001 (re's name)
    """``re.compile(pattern, flags)``, guarded by its first characters where that helps."""
    plain = re.compile(pattern, flags)
    guard = _guard_class(pattern, plain.flags)
    if guard is None:
        return plain
    close = "\n)" if plain.flags & re.VERBOSE else ")"  # a trailing comment stays one
    try:
        guarded = re.compile(f"(?=[{guard}])(?:{pattern}{close}", flags)
    except re.error:  # "(?i)" opening the pattern must stay first: no guard then
        return plain
    GUARDED.append((plain, guarded))
    return guarded


def _guard_class(pattern: str, flags: int) -> str | None:
    try:
        tree = _sre_parse.parse(pattern, flags)
        # the engine's own skip-ahead: a literal prefix or a set of first characters
        prefix = _sre_compile._get_literal_prefix(tree, flags)[0]
        if prefix or _sre_compile._get_charset_prefix(tree, flags):
            return None
    except Exception:  # noqa: BLE001 (a private API that moved: no guard, same matches)
        return None
    ranges, nullable = _first(tree.data)
    if ranges is _UNKNOWN or nullable or not ranges:
        return None
    return "".join(_class_item(lo, hi) for lo, hi in _merged(ranges))


def _first(items: list) -> tuple[Ranges | None, bool]:
    """The code points a match of ``items`` (a sequence) can start with, and whether it
    can be empty."""
    out: Ranges = []
    for op, av in items:
        ranges, nullable = _first_of(op, av)
        if ranges is _UNKNOWN:
            return _UNKNOWN, False
        out += ranges
        if not nullable:
            return out, False
    return out, True


def _first_of(op: object, av: object) -> tuple[Ranges | None, bool]:
    if op is _c.LITERAL:
        return [(av, av)], False
    if op is _c.IN:
        return _first_in(av), False
    if op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT):  # zero-width: the next item decides
        return [], True
    if op is _c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags or del_flags:  # (?i:…) inside: the guard would read case otherwise
            return _UNKNOWN, False
        return _first(sub.data)
    if op is _c.ATOMIC_GROUP:
        return _first(av.data)
    if op is _c.BRANCH:
        out: Ranges = []
        empty = False
        for branch in av[1]:
            ranges, nullable = _first(branch.data)
            if ranges is _UNKNOWN:
                return _UNKNOWN, False
            out += ranges
            empty |= nullable
        return out, empty
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
        low, _high, sub = av
        ranges, nullable = _first(sub.data)
        return ranges, nullable or low == 0
    return _UNKNOWN, False  # ANY, NOT_LITERAL, GROUPREF, conditionals...


def _first_in(items: list) -> Ranges | None:
    out: Ranges = []
    for op, av in items:
        if op is _c.LITERAL:
            out.append((av, av))
        elif op is _c.RANGE:
            out.append(av)
        else:  # NEGATE, CATEGORY (\w, \d, \s): too wide to help
            return _UNKNOWN
    return out


def _merged(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _class_item(lo: int, hi: int) -> str:
    if lo == hi:
        return re.escape(chr(lo))
    return f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
