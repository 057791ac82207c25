"""Linear-time matching of concept sequences over the token stream.

No backtracking regex is involved: tokens are looked up in a dict (Latin
scripts) or found by one alternation of literals (CJK runs), and each rule
sequence is a tiny automaton that remembers, per step, the last position where
the prefix matched. Each hit updates a bounded number of states, so the cost is
O(tokens) whatever the input looks like.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .lexicon import CJK_EXTRA_LATIN, CJK_LANGS, LATIN_LANGS, LEXICON, Lexicon
from .normalize import Normalized, leet_fold, strip_accents

Concepts = frozenset[str]
SEGMENT_MIN = 12  # tokens this long may be glued words: "ignorepreviousinstructions"
SEGMENT_MAX = 256
CJK_POS_SCALE = 0.3  # CJK distances: about three characters per "word"
CJK_TAGGED = frozenset({"IGN", "SYS"})  # these also get an "<X>_CJK" concept in CJK
BLOCK_GAP = 2  # a blocker concept this close before step 0 cancels the start
_BRACES = re.compile(r"^(.*?)\{([^{}]*)\}(.*)$")


@dataclass(frozen=True, slots=True)
class Hit:
    pos: float
    token: str
    concepts: Concepts
    via: str = ""  # "", "leet", "spacing", "glued": how the token was recovered


@dataclass(frozen=True, slots=True)
class Sequence_:
    """Concept sets in order; ``gaps[i]`` bounds the distance from step i to i+1."""

    steps: tuple[Concepts, ...]
    gaps: tuple[float, ...]
    # Concepts that, seen just before step 0, cancel it (e.g. "I" in "I ignored").
    unless: Concepts = frozenset()


@dataclass(frozen=True, slots=True)
class SeqMatch:
    seq_index: int
    start: float
    end: float
    via: str
    first_token: str
    last_token: str


def expand(term: str) -> list[str]:
    """``ignor{e,ed}`` → ["ignore", "ignored"] (one brace group per pass)."""
    m = _BRACES.match(term)
    if not m:
        return [term]
    head, alts, tail = m.groups()
    return [w for alt in alts.split(",") for w in expand(head + alt + tail)]


LANGS: dict[str, set[str]] = {}  # word → languages it was listed under (for reasons)


def build_index(lexicon: Lexicon) -> tuple[dict[str, Concepts], dict[str, Concepts]]:
    """Return (latin word → concepts, cjk substring → concepts)."""
    latin: dict[str, set[str]] = {}
    cjk: dict[str, set[str]] = {}
    for concept, by_lang in lexicon.items():
        for lang, terms in by_lang.items():
            table = cjk if lang in CJK_LANGS else latin
            for raw in terms.split():
                for word in expand(raw.casefold()):
                    table.setdefault(word, set()).add(concept)
                    if concept in CJK_TAGGED and lang in CJK_LANGS:
                        table[word].add(concept + "_CJK")  # for word orders only CJK uses
                    LANGS.setdefault(word, set()).add(lang)
                    if lang in LATIN_LANGS:
                        bare = strip_accents(word)
                        latin.setdefault(bare, set()).add(concept)
                        LANGS.setdefault(bare, set()).add(lang)
    for word, concepts in CJK_EXTRA_LATIN.items():
        cjk.setdefault(word, set()).update(concepts)
    return _freeze(latin), _freeze(cjk)


def _freeze(table: dict[str, set[str]]) -> dict[str, Concepts]:
    return {k: frozenset(v) for k, v in table.items()}


LATIN_INDEX, CJK_INDEX = build_index(LEXICON)


def _alternation(words: Iterable[str]) -> re.Pattern[str]:
    # Longest first so "系统提示词" wins over "系统提示"; literals only: no backtracking.
    ordered = sorted(set(words), key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in ordered))


CJK_RE = _alternation(CJK_INDEX)
# Glued Latin words are split with the longer lexicon words (short ones like
# "no" or "all" would match inside everything).
GLUE_RE = _alternation(w for w in LATIN_INDEX if len(w) >= 4)
CJK_ANY_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def latin_hits(norm: Normalized) -> list[Hit]:
    """Lexicon hits in the word stream, with leet, spacing and glued variants."""
    words = norm.words
    index = LATIN_INDEX
    hits = [Hit(float(i), w, index[w]) for i, w in enumerate(words) if w in index]
    if norm.joined:
        hits = [Hit(h.pos, h.token, h.concepts, "spacing") if h.pos in norm.joined else h for h in hits]
    if not norm.is_ascii:
        hits += _accent_hits(words, {h.pos for h in hits})
    if norm.leet_words is not None:
        seen = {h.pos for h in hits}
        hits += [
            Hit(float(i), w, index[w], "leet")
            for i, w in enumerate(norm.leet_words)
            if w in index and i not in seen
        ]
    hits += _glued_hits(words, norm)
    hits += _hyphen_hits(words)
    hits.sort(key=lambda h: h.pos)
    return hits


def _accent_hits(words: Sequence[str], seen: set[float]) -> list[Hit]:
    # "ìgnòrè": accents used as obfuscation; lexicon words are indexed unaccented.
    out = []
    for i in [i for i, w in enumerate(words) if not w.isascii()]:
        bare = _strip_cached(words[i])
        if i not in seen and bare in LATIN_INDEX:
            out.append(Hit(float(i), bare, LATIN_INDEX[bare]))
    return out


@lru_cache(maxsize=8192)
def _strip_cached(word: str) -> str:
    return strip_accents(word)


def _glued_hits(words: Sequence[str], norm: Normalized) -> list[Hit]:
    out: list[Hit] = []
    long_ones = [i for i, n in enumerate(map(len, words)) if n >= SEGMENT_MIN]
    for i in sorted(set(long_ones) | norm.joined):
        word = words[i][:SEGMENT_MAX]
        if word in LATIN_INDEX:
            continue
        via = "spacing" if i in norm.joined else "glued"
        for k, m in enumerate(GLUE_RE.finditer(_leet_if_needed(word, norm))):
            # Sub-positions keep order inside the token: i, i+0.01, i+0.02...
            out.append(Hit(i + min(k, 99) / 100, m.group(), LATIN_INDEX[m.group()], via))
    return out


def _hyphen_hits(words: Sequence[str]) -> list[Hit]:
    # "ig-no-re" → "ignore"; "ignore-les", "révèle-moi" → their parts.
    out: list[Hit] = []
    for i in [i for i, w in enumerate(words) if "-" in w]:
        word = words[i]
        if word in LATIN_INDEX:
            continue
        parts = word.split("-")
        whole = "".join(parts)
        if whole in LATIN_INDEX:
            out.append(Hit(float(i), whole, LATIN_INDEX[whole], "hyphens"))
            continue
        for k, part in enumerate(parts[:99]):
            if part in LATIN_INDEX:
                out.append(Hit(i + k / 100, part, LATIN_INDEX[part]))
    return out


def _leet_if_needed(word: str, norm: Normalized) -> str:
    return leet_fold(word) if norm.leet_words is not None else word


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
CJK_SPACE_RE = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")


def cjk_text(folded: str) -> str:
    """The text the CJK stream runs on: spaces between CJK characters removed
    ("忽 略 指 令" is "忽略指令"); empty when there is no CJK at all."""
    if not CJK_ANY_RE.search(folded):
        return ""
    return CJK_SPACE_RE.sub("", folded)


def cjk_hits(text: str) -> list[Hit]:
    return [Hit(m.start() * CJK_POS_SCALE, m.group(), CJK_INDEX[m.group()]) for m in CJK_RE.finditer(text)]


class SequenceSet:
    """Compiled automata for many sequences; ``run`` is linear in the hits."""

    def __init__(self, sequences: Sequence[Sequence_]) -> None:
        self.sequences = list(sequences)
        # concept → [(seq index, step index)], later steps first so one token
        # never advances two steps of the same sequence at once.
        table: dict[str, list[tuple[int, int]]] = {}
        for si, seq in enumerate(self.sequences):
            for step, concepts in enumerate(seq.steps):
                for c in concepts:
                    table.setdefault(c, []).append((si, step))
        self._by_concept = {c: sorted(v, key=lambda e: -e[1]) for c, v in table.items()}

    def run(self, hits: Iterable[Hit]) -> list[SeqMatch]:
        # state[si][step] = (pos of that step, start pos, via, first token) of the
        # latest prefix match
        state: list[list[tuple[float, float, str, str] | None]] = [
            [None] * len(s.steps) for s in self.sequences
        ]
        matched: dict[int, SeqMatch] = {}
        last_seen: dict[str, float] = {}
        for hit in hits:
            for si, step in self._entries(hit.concepts):
                if step == 0 and self._blocked(si, hit.pos, last_seen):
                    continue
                self._advance(si, step, hit, state, matched)
            for c in hit.concepts:
                last_seen[c] = hit.pos
        return list(matched.values())

    def _blocked(self, si: int, pos: float, last_seen: dict[str, float]) -> bool:
        unless = self.sequences[si].unless
        return any(0 < pos - last_seen.get(c, -1e9) <= BLOCK_GAP for c in unless)

    def _entries(self, concepts: Concepts) -> list[tuple[int, int]]:
        if len(concepts) == 1:
            return self._by_concept.get(next(iter(concepts)), [])
        merged = {e for c in concepts for e in self._by_concept.get(c, ())}
        return sorted(merged, key=lambda e: -e[1])

    def _advance(self, si: int, step: int, hit: Hit, state: list, matched: dict) -> None:
        seq = self.sequences[si]
        if step == 0:
            state[si][0] = (hit.pos, hit.pos, hit.via, hit.token)
        else:
            prev = state[si][step - 1]
            if prev is None or not 0 < hit.pos - prev[0] <= seq.gaps[step - 1]:
                return
            state[si][step] = (hit.pos, prev[1], prev[2] or hit.via, prev[3])
        if step == len(seq.steps) - 1 and si not in matched:
            pos, start, via, first = state[si][step]
            matched[si] = SeqMatch(si, start, pos, via, first, hit.token)
