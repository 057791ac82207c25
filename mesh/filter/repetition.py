"""Excessive repetition of a word or short phrase ("forget forget forget").

Runs are found with C-level passes: ``bytes(map(str.__eq__, w, w[p:]))`` marks
where a token equals the one ``p`` places later, and ``bytes.find`` looks for a
long enough run of ones. Python only looks at the runs it finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .matcher import LATIN_INDEX, Hit

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


def repeated_attack_word(words: Sequence[str]) -> RepeatHit | None:
    marks = bytes(map(str.__eq__, words, words[1:]))
    needle = b"\x01" * (ATTACK_REPEATS - 1)
    start, seen = marks.find(needle), 0
    while start >= 0 and seen < MAX_RUNS:
        word = words[start]
        if LATIN_INDEX.get(word, frozenset()) & ATTACK_CONCEPTS:
            return RepeatHit("patterns.repetition", 0.85, " ".join(words[start : start + 4]),
                             f"'{word}' repeated")
        end = marks.find(b"\x00", start)
        start = -1 if end < 0 else marks.find(needle, end)
        seen += 1
    return None


def repeated_cjk_attack(hits: Sequence[Hit]) -> RepeatHit | None:
    run = 1
    for prev, cur in zip(hits, hits[1:], strict=False):
        same = cur.token == prev.token and cur.pos - prev.pos <= CJK_ADJACENT + len(prev.token) / 2
        run = run + 1 if same else 1
        if run >= ATTACK_REPEATS and cur.concepts & ATTACK_CONCEPTS:
            return RepeatHit("patterns.repetition", 0.85, cur.token * run, f"'{cur.token}' repeated")
    return None


def repeated_phrase(words: Sequence[str]) -> RepeatHit | None:
    best: RepeatHit | None = None
    for period in range(1, MAX_PERIOD + 1):
        marks = bytes(map(str.__eq__, words, words[period:]))
        for repeats, score in ((STRONG_REPEATS, 0.75), (WEAK_REPEATS, 0.35)):
            start = _find_wordy_run(words, marks, period, repeats)
            if start >= 0:
                if best is None or score > best.score:
                    phrase = " ".join(words[start : start + period])
                    best = RepeatHit("patterns.repetition", score, phrase,
                                     f"'{phrase}' repeated {repeats}+ times")
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
