"""Excessive repetition of a word or short phrase ("forget forget forget").

Runs are found with C-level passes: ``bytes(map(str.__eq__, w, w[p:]))`` marks
where a token equals the one ``p`` places later, and ``bytes.find`` looks for a
long enough run of ones. Python only looks at the runs it finds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import add, and_, eq, le, sub, truediv

from .hits import Hit, Stream, from_hits
from .lexicon_index import LATIN_INDEX

ATTACK_CONCEPTS = frozenset({"IGN", "IGN_WEAK", "REVEAL"})
ATTACK_REPEATS = 3  # "forget forget forget"
STRONG_REPEATS = 16  # any word/phrase, e.g. the "repeat 'poem' forever" trick
WEAK_REPEATS = 8
MAX_PERIOD = 3  # phrases up to three tokens
MAX_RUNS = 64  # runs inspected per period; keeps "0 0 0 ..." inputs cheap
CJK_ADJACENT = 2.0  # CJK hit positions are in half-characters


@dataclass(frozen=True, slots=True)
class RepeatHit:
    rule: str
    score: float
    span: str
    detail: str


# Lexicon words with an attack concept: only those can start an attack-word run.
ATTACK_WORDS = frozenset(w for w, c in LATIN_INDEX.items() if c & ATTACK_CONCEPTS)
SAMPLED_CONFIRM_MAX = 64  # sampled candidates checked one by one; past that, the full pass


def repeated_attack_word(words: Sequence[str]) -> RepeatHit | None:
    if ATTACK_WORDS.isdisjoint(words):  # hashes are cached: cheaper than the marks pass
        return None
    marks = bytes(map(eq, words, words[1:]))
    needle = b"\x01" * (ATTACK_REPEATS - 1)
    start, seen = marks.find(needle), 0
    while start >= 0 and seen < MAX_RUNS:
        word = words[start]
        if LATIN_INDEX.get(word, frozenset()) & ATTACK_CONCEPTS:
            return RepeatHit(
                "patterns.repetition",
                0.85,
                " ".join(words[start : start + 4]),
                f"'{word}' repeated",
            )
        end = marks.find(b"\x00", start)
        start = -1 if end < 0 else marks.find(needle, end)
        seen += 1
    return None


def repeated_cjk_attack(hits: Sequence[Hit]) -> RepeatHit | None:
    return repeated_cjk_attack_stream(from_hits(hits))


_RUN3_RE = re.compile(b"\x01{2,}")


def repeated_cjk_attack_stream(s: Stream) -> RepeatHit | None:
    """:func:`repeated_cjk_attack` with C-level passes: ``marks[j]`` says hit j+1
    repeats hit j (same token, adjacent); a run of 2+ ones is 3+ copies."""
    tok, pos = s.tok, s.pos
    if len(tok) < ATTACK_REPEATS:
        return None
    same = bytes(map(eq, tok, tok[1:]))
    if b"\x01\x01" not in same:  # cheap first pass: no token three times in a row
        return None
    limits = map(add, repeat(CJK_ADJACENT), map(truediv, map(len, tok), repeat(2)))
    marks = bytes(map(and_, same, map(le, map(sub, pos[1:], pos), limits)))
    if b"\x01\x01" not in marks:
        return None
    attack = {c for c in set(s.con) if c & ATTACK_CONCEPTS}
    flags = bytes(map(attack.__contains__, s.con))
    for m in _RUN3_RE.finditer(marks):
        # Hits m.start() .. m.end() repeat one token; the 3rd copy onwards counts.
        j = flags.find(b"\x01", m.start() + 2, m.end() + 1)
        if j >= 0:
            run = j - m.start() + 1
            return RepeatHit("patterns.repetition", 0.85, tok[j] * run, f"'{tok[j]}' repeated")
    return None


def _may_repeat(words: Sequence[str], period: int, length: int) -> bool:
    """False only when ``words[i] == words[i + period]`` never holds ``length`` times in a row.

    Such a run covers a multiple of ``length``: comparing at those positions only (1/length
    of the full pass) rules most texts out. Each sampled equality is then confirmed on the
    window of ``length - 1`` positions either side, which holds ``length`` of the run if
    there is one.
    """
    n = len(words) - period
    if n < length:
        return False
    sampled = bytes(map(eq, words[0:n:length], words[period::length]))
    hits = sampled.count(1)
    if hits == 0:
        return False
    if hits > SAMPLED_CONFIRM_MAX:
        return True
    needle = b"\x01" * length
    k = sampled.find(1)
    while k >= 0:
        i = k * length
        lo, hi = max(0, i - length + 1), min(n, i + length)
        if needle in bytes(map(eq, words[lo:hi], words[lo + period : hi + period])):
            return True
        k = sampled.find(1, k + 1)
    return False


def repeated_phrase(words: Sequence[str]) -> RepeatHit | None:
    best: RepeatHit | None = None
    for period in range(1, MAX_PERIOD + 1):
        # A run needs period * (WEAK_REPEATS - 1) equalities in a row (STRONG needs more).
        if not _may_repeat(words, period, period * (WEAK_REPEATS - 1)):
            continue
        marks = bytes(map(eq, words, words[period:]))
        for repeats, score in ((STRONG_REPEATS, 0.75), (WEAK_REPEATS, 0.35)):
            start = _find_wordy_run(words, marks, period, repeats)
            if start >= 0:
                if best is None or score > best.score:
                    phrase = " ".join(words[start : start + period])
                    best = RepeatHit(
                        "patterns.repetition",
                        score,
                        phrase,
                        f"'{phrase}' repeated {repeats}+ times",
                    )
                break
    return best


def _find_wordy_run(words: Sequence[str], marks: bytes, period: int, repeats: int) -> int:
    # Numbers, single letters and table rules ("0 0 0", "| | |") are not phrases.
    needle = b"\x01" * (period * (repeats - 1))
    start, seen = marks.find(needle), 0
    while start >= 0 and seen < MAX_RUNS:
        if any(len(w) >= 2 and w.isalpha() for w in words[start : start + period]):
            return start
        end = marks.find(b"\x00", start)
        start = -1 if end < 0 else marks.find(needle, end)
        seen += 1
    return -1
