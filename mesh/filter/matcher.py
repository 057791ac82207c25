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
from itertools import compress, repeat
from operator import not_
from typing import NamedTuple

from .lexicon import CJK_EXTRA_LATIN, CJK_LANGS, LATIN_LANGS, LEXICON, Lexicon
from .normalize import Normalized, leet_fold, strip_accents

Concepts = frozenset[str]
SEGMENT_MIN = 12  # tokens this long may be glued words: "ignorepreviousinstructions"
SEGMENT_MAX = 256
MAX_SEGMENTED = 256  # glued-word candidates examined per prompt
CJK_POS_SCALE = 0.3  # CJK distances: about three characters per "word"
CJK_TAGGED = frozenset({"IGN", "SYS"})  # these also get an "<X>_CJK" concept in CJK
BLOCK_GAP = 2  # a blocker concept this close before step 0 cancels the start
_BRACES = re.compile(r"^(.*?)\{([^{}]*)\}(.*)$")


class Hit(NamedTuple):  # a tuple: built by the thousand, must be cheap
    pos: float
    token: str
    concepts: Concepts
    via: str = ""  # "", "leet", "spacing", "glued", "hyphens": how the token was recovered


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
    return _freeze(latin), _freeze(cjk)


def _freeze(table: dict[str, set[str]]) -> dict[str, Concepts]:
    return {k: frozenset(v) for k, v in table.items()}


LATIN_INDEX, CJK_INDEX = build_index(LEXICON)


def _alternation(words: Iterable[str]) -> re.Pattern[str]:
    # Longest first so "系统提示词" wins over "系统提示"; literals only: no backtracking.
    ordered = sorted(set(words), key=len, reverse=True)
    return re.compile("|".join(re.escape(w) for w in ordered))


# CJK terms only: a Latin alternative would make the engine try every term at
# every Latin letter. The few Latin words CJK rules need are found separately.
CJK_RE = _alternation(CJK_INDEX)
CJK_LATIN_RE = _alternation(CJK_EXTRA_LATIN)


def _prefix_table(words: Iterable[str], size: int = 4) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for w in sorted(words, key=len, reverse=True):  # longest first
        table.setdefault(w[:size], []).append(w)
    return table


# Glued Latin words are split with the longer lexicon words (short ones like
# "no" or "all" would match inside everything), found by their first 4 letters.
GLUE_PREFIX = _prefix_table(w for w in LATIN_INDEX if len(w) >= 4)


def segment(word: str) -> list[str]:
    """Greedy longest lexicon words inside a glued token: O(len) dict lookups."""
    out: list[str] = []
    i, n = 0, len(word)
    while i <= n - 4:
        found = next((w for w in GLUE_PREFIX.get(word[i : i + 4], ()) if word.startswith(w, i)), "")
        out.append(found) if found else None
        i += len(found) or 1
    return out
CJK_ANY_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def latin_hits(norm: Normalized) -> list[Hit]:
    """Lexicon hits in the word stream, with leet, spacing and glued variants."""
    words = norm.words
    index = LATIN_INDEX
    # Indices are found with C-level map/compress; Python only touches the hits.
    hits = [Hit(float(i), words[i], index[words[i]]) for i in _where(map(index.__contains__, words))]
    if norm.joined:
        hits = [Hit(h.pos, h.token, h.concepts, "spacing") if h.pos in norm.joined else h for h in hits]
    if not norm.is_ascii:
        hits += _accent_hits(words, {h.pos for h in hits})
    if norm.leet_words is not None:
        hits += _leet_hits(words)
    hits += _glued_hits(words, norm)
    hits += _hyphen_hits(words)
    hits.sort(key=lambda h: h.pos)
    return hits


def _accent_hits(words: Sequence[str], seen: set[float]) -> list[Hit]:
    # "ìgnòrè": accents used as obfuscation; lexicon words are indexed unaccented.
    out = []
    for i in _where(map(not_, map(str.isascii, words))):
        if words[i][0] >= "\u0250":  # not Latin script: nothing to strip
            continue
        bare = _strip_cached(words[i])
        if i not in seen and bare in LATIN_INDEX:
            out.append(Hit(float(i), bare, LATIN_INDEX[bare]))
    return out


@lru_cache(maxsize=8192)
def _strip_cached(word: str) -> str:
    return strip_accents(word)


def _glued_hits(words: Sequence[str], norm: Normalized) -> list[Hit]:
    out: list[Hit] = []
    long_ones = _where(map(SEGMENT_MIN.__le__, map(len, words)))
    for i in sorted(set(long_ones[:MAX_SEGMENTED]) | norm.joined):
        word = words[i][:SEGMENT_MAX]
        # Only Latin-script glue: CJK runs have their own stream.
        if word in LATIN_INDEX or word[0] >= "\u0250":
            continue
        via = "spacing" if i in norm.joined else "glued"
        for k, part in enumerate(segment(_leet_if_needed(word, norm))):
            # Sub-positions keep order inside the token: i, i+0.01, i+0.02...
            out.append(Hit(i + min(k, 99) / 100, part, LATIN_INDEX[part], via))
    return out


def _hyphen_hits(words: Sequence[str]) -> list[Hit]:
    # "ig-no-re" → "ignore"; "ignore-les", "révèle-moi" → their parts.
    out: list[Hit] = []
    for i in _where(map(str.__contains__, words, repeat("-"))):
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


def _where(flags: Iterable[bool]) -> list[int]:
    return list(compress(range(1 << 62), flags))


def _leet_hits(words: Sequence[str]) -> list[Hit]:
    # Only tokens that are not pure letters can hide leetspeak ("1gn0r3", "$ystem").
    where = _where(map(not_, map(str.isalpha, words)))
    # Fold each distinct token once: floods of one leet word stay cheap.
    folded = {w: leet_fold(w) for w in {words[i] for i in where}}
    hits = {w: LATIN_INDEX[f] for w, f in folded.items() if f in LATIN_INDEX and w not in LATIN_INDEX}
    return [Hit(float(i), folded[words[i]], hits[words[i]], "leet") for i in where if words[i] in hits]


def collapse_runs(hits: list[Hit]) -> list[Hit]:
    """Keep the first two and the last hit of a run of one repeated token.

    "ai ai ai ... ai" cannot advance any sequence further than two copies do,
    and without this a flood of one lexicon word costs work per copy.
    """
    if len(hits) < 3:
        return hits
    out = [hits[0]]
    run = 1
    for prev, cur in zip(hits, hits[1:], strict=False):
        if cur.token == prev.token and cur.pos - prev.pos <= 1:
            run += 1
            if run == 2:
                out.append(cur)
            elif run > 2:
                out[-1] = cur if run > 3 else out[-1]
                if run == 3:
                    out.append(cur)
        else:
            run = 1
            out.append(cur)
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
    hits = [Hit(m.start() * CJK_POS_SCALE, m.group(), CJK_INDEX[m.group()]) for m in CJK_RE.finditer(text)]
    extra = [
        Hit(m.start() * CJK_POS_SCALE, m.group(), frozenset(CJK_EXTRA_LATIN[m.group()]))
        for m in CJK_LATIN_RE.finditer(text)
    ]
    return sorted(hits + extra) if extra else hits


class SequenceSet:
    """Compiled automata for many sequences; ``run`` is linear in the hits.

    Each concept set maps to a precomputed list of (sequence, step, gap to the
    previous step, is-last, blockers) entries, later steps first so one token
    never advances two steps of the same sequence. Once a group (a rule) has
    matched, its sequences are skipped: one match per rule is all we report,
    and inputs stuffed with attack words stop costing work.
    """

    def __init__(self, sequences: Sequence[Sequence_], groups: Sequence[int] | None = None) -> None:
        self.sequences = list(sequences)
        self.groups = list(groups) if groups is not None else list(range(len(self.sequences)))
        by_concept: dict[str, list[tuple[int, int]]] = {}
        for si, seq in enumerate(self.sequences):
            for step, concepts in enumerate(seq.steps):
                for c in concepts:
                    by_concept.setdefault(c, []).append((si, step))
        self._by_concept = by_concept
        self._cache: dict[Concepts, list[tuple]] = {}

    def _entries(self, concepts: Concepts) -> list[tuple]:
        entries = self._cache.get(concepts)
        if entries is None:
            pairs = sorted({e for c in concepts for e in self._by_concept.get(c, ())}, key=lambda e: -e[1])
            entries = [self._entry(si, step) for si, step in pairs]
            self._cache[concepts] = entries
        return entries

    def _entry(self, si: int, step: int) -> tuple:
        seq = self.sequences[si]
        gap = seq.gaps[step - 1] if step else 0.0
        return (si, step, gap, step == len(seq.steps) - 1, seq.unless, self.groups[si])

    def run(self, hits: Iterable[Hit]) -> list[SeqMatch]:
        # state[si][step] = (pos, start pos, via, first token) of the latest prefix match
        state: list[list[tuple | None]] = [[None] * len(s.steps) for s in self.sequences]
        done: set[int] = set()  # groups that matched
        matched: list[SeqMatch] = []
        last_seen: dict[str, float] = {}
        for hit in hits:
            pos = hit.pos
            for si, step, gap, last, unless, group in self._entries(hit.concepts):
                if group in done:
                    continue
                st = state[si]
                if step == 0:
                    if unless and any(0 < pos - last_seen.get(c, -1e9) <= BLOCK_GAP for c in unless):
                        continue
                    st[0] = (pos, pos, hit.via, hit.token)
                else:
                    prev = st[step - 1]
                    if prev is None or not 0 < pos - prev[0] <= gap:
                        continue
                    st[step] = (pos, prev[1], prev[2] or hit.via, prev[3])
                if last:
                    done.add(group)
                    _, start, via, first = st[step]
                    matched.append(SeqMatch(si, start, pos, via, first, hit.token))
            for c in hit.concepts:
                last_seen[c] = pos
        return matched
