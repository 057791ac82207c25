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
from functools import lru_cache, partial
from itertools import accumulate, chain, compress, repeat
from operator import add, and_, eq, itemgetter, le, mul, sub
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


def _trie_pattern(words: Iterable[str]) -> str:
    """One alternation of literals, factored as a trie: the longest word wins.

    Equivalent to ``"|".join(longest first)`` (leftmost, then longest match), but
    the engine only follows the branch of the next character instead of trying
    every word in turn, and the leading character class lets ``search`` skip
    positions that cannot start a word. Literals only, each branch decided by
    one character: no backtracking beyond the word length.
    """
    trie: dict[str, dict] = {}
    for w in set(words):
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, dict]) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


def _alternation(words: Iterable[str]) -> re.Pattern[str]:
    # Longest match first so "系统提示词" wins over "系统提示"; literals only: no backtracking.
    return re.compile(_trie_pattern(words))


# CJK terms (and the Latin "ai" listed under zh/ja). The few Latin words CJK
# rules need are found separately.
CJK_RE = _alternation(CJK_INDEX)
CJK_LATIN_RE = _alternation(CJK_EXTRA_LATIN)
# Same alternations with one capturing group: ``split`` returns the matches and
# the text between them in one C-level call (positions by cumulative lengths).
_CJK_SPLIT_RE = re.compile(f"({CJK_RE.pattern})")
# The same matches, found by two scans: the CJK terms (no ASCII character in
# any of them, so the leading class skips Latin text quickly) and the few ASCII
# terms ("ai"). A match of one kind can never overlap one of the other, so the
# two scans together give exactly the matches of the single alternation.
_CJK_ASCII_TERMS = tuple(sorted(w for w in CJK_INDEX if w.isascii()))
assert all(not any(c.isascii() for c in w) for w in CJK_INDEX if w not in _CJK_ASCII_TERMS)
_CJK_WIDE_SPLIT_RE = re.compile(f"({_trie_pattern(w for w in CJK_INDEX if not w.isascii())})")
_CJK_ASCII_SPLIT_RE = (
    re.compile(f"({_trie_pattern(_CJK_ASCII_TERMS)})") if _CJK_ASCII_TERMS else None
)
_CJK_LATIN_SPLIT_RE = re.compile(f"({CJK_LATIN_RE.pattern})")

# Glued Latin words are split with the longer lexicon words (short ones like
# "no" or "all" would match inside everything).
GLUE_WORDS = frozenset(w for w in LATIN_INDEX if len(w) >= 4)
GLUE_RE = _alternation(GLUE_WORDS)


def segment(word: str) -> list[str]:
    """Greedy longest lexicon words inside a glued token (one C-level scan).

    Leftmost-longest, non-overlapping: the same as walking the token and taking
    the longest lexicon word (>= 4 letters) that starts at each position.
    """
    return GLUE_RE.findall(word)


CJK_ANY_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_POS = itemgetter(0)
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
        mask = bytes(mask) if not isinstance(mask, bytes | bytearray) else mask
        return Stream(
            list(compress(self.pos, mask)),
            list(compress(self.tok, mask)),
            list(compress(self.con, mask)),
            None if self.via is None else list(compress(self.via, mask)),
        )


EMPTY = Stream([], [], [], None)


def _merge(parts: list[Stream]) -> Stream:
    """Concatenate, then stable-sort by position (the order ``list.sort`` gives hits)."""
    parts = [p for p in parts if p.tok]
    if len(parts) <= 1:
        return parts[0] if parts else EMPTY
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


def _from_hits(hits: Iterable[tuple]) -> Stream:
    hits = list(hits)
    if not hits:
        return EMPTY
    pos, tok, con, via = (list(x) for x in zip(*hits, strict=True))
    return Stream(pos, tok, con, via)


def latin_hits(norm: Normalized) -> list[Hit]:
    """Lexicon hits in the word stream, with leet, spacing and glued variants."""
    return latin_stream(norm).hits()


def latin_stream(norm: Normalized) -> Stream:
    """:func:`latin_hits` as a :class:`Stream`.

    Occurrences are found with C-level ``map``/``compress``; Python code runs
    once per *distinct* token (floods of one word cost one lookup) and once per
    hit that glued or hyphenated tokens recover.
    """
    words = norm.words
    index = LATIN_INDEX
    where = _where(map(index.__contains__, words))
    tokens = list(map(words.__getitem__, where))
    vias = None
    if norm.joined:
        spaced = dict.fromkeys(norm.joined, "spacing")
        vias = list(map(spaced.get, where, repeat("")))
    parts = [Stream(list(map(float, where)), tokens, list(map(index.__getitem__, tokens)), vias)]
    distinct: set[str] | None = None
    if not norm.is_ascii:
        distinct = set(words)
        parts.append(_accent_hits(words, distinct))
    if norm.leet_words is not None:
        distinct = distinct if distinct is not None else set(words)
        parts.append(_leet_hits(words, distinct))
    parts.append(_glued_stream(words, norm))
    parts.append(_hyphen_hits(words, distinct))
    return _merge(parts)


def _mapped(words: Sequence[str], found: dict[str, str], via: str) -> Stream:
    """Hits for every occurrence of a key of ``found`` (word → lexicon token)."""
    if not found:
        return EMPTY
    where = _where(map(found.__contains__, words))
    tokens = list(map(found.__getitem__, map(words.__getitem__, where)))
    return Stream(
        list(map(float, where)),
        tokens,
        list(map(LATIN_INDEX.__getitem__, tokens)),
        None if not via else [via] * len(where),
    )


def _accent_hits(words: Sequence[str], distinct: set[str]) -> Stream:
    # "ìgnòrè": accents used as obfuscation; lexicon words are indexed unaccented.
    bare: dict[str, str] = {}
    for w in distinct:
        if w.isascii() or w[0] >= "\u0250" or w in LATIN_INDEX:  # not Latin / already a hit
            continue
        b = _strip_cached(w)
        if b in LATIN_INDEX:
            bare[w] = b
    return _mapped(words, bare, "")


@lru_cache(maxsize=8192)
def _strip_cached(word: str) -> str:
    return strip_accents(word)


def _glued_hits(words: Sequence[str], norm: Normalized) -> list[Hit]:
    out: list[Hit] = []
    long_ones = _where(map(SEGMENT_MIN.__le__, map(len, words)))
    if not long_ones and not norm.joined:
        return out
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


def _glued_stream(words: Sequence[str], norm: Normalized) -> Stream:
    """:func:`_glued_hits` as a stream; Python work once per *distinct* candidate
    word, so thousands of joined copies of one spaced-out word cost C-level passes."""
    long_ones = _where(map(SEGMENT_MIN.__le__, map(len, words)))
    if not long_ones and not norm.joined:
        return EMPTY
    cands = sorted(set(long_ones[:MAX_SEGMENTED]) | norm.joined)
    cwords = list(map(words.__getitem__, cands))
    leet = norm.leet_words is not None
    found: dict[str, list[str]] = {}
    for w in set(cwords):
        word = w[:SEGMENT_MAX]
        # Only Latin-script glue: CJK runs have their own stream.
        if word in LATIN_INDEX or word[0] >= "\u0250":
            continue
        seg = segment(leet_fold(word) if leet else word)
        if seg:
            found[w] = seg
    if not found:
        return EMPTY
    keep = list(map(found.__contains__, cwords))
    where = list(compress(cands, keep))
    segs = list(map(found.__getitem__, compress(cwords, keep)))
    counts = list(map(len, segs))
    # Sub-positions keep order inside the token: i, i+0.01, i+0.02...
    offsets = list(
        chain.from_iterable(map(_SUB_OFFSETS.__getitem__, map(slice, repeat(0), counts)))
    )
    pos = list(map(add, chain.from_iterable(map(repeat, where, counts)), offsets))
    tok = list(chain.from_iterable(segs))
    joined = norm.joined
    via = list(
        chain.from_iterable(
            map(repeat, map(_GLUE_VIA.__getitem__, map(joined.__contains__, where)), counts)
        )
    )
    return Stream(pos, tok, list(map(LATIN_INDEX.__getitem__, tok)), via)


_SUB_OFFSETS = [min(k, 99) / 100 for k in range(SEGMENT_MAX + 1)]
_GLUE_VIA = ("glued", "spacing")


def _hyphen_parts(word: str) -> list[tuple[float, str, Concepts, str]]:
    # "ig-no-re" → "ignore"; "ignore-les", "révèle-moi" → their parts.
    parts = word.split("-")
    whole = "".join(parts)
    if whole in LATIN_INDEX:
        return [(0.0, whole, LATIN_INDEX[whole], "hyphens")]
    return [
        (k / 100, part, LATIN_INDEX[part], "")
        for k, part in enumerate(parts[:99])
        if part in LATIN_INDEX
    ]


def _hyphen_hits(words: Sequence[str], distinct: set[str] | None) -> Stream:
    if distinct is None:
        hyphenated = set(compress(words, map(str.__contains__, words, repeat("-"))))
    else:
        hyphenated = {w for w in distinct if "-" in w}
    found = {w: p for w in hyphenated if w not in LATIN_INDEX and (p := _hyphen_parts(w))}
    if not found:
        return EMPTY
    # Every occurrence i expands to the parts of its word, at i + offset (C-level).
    where = _where(map(found.__contains__, words))
    expansions = list(map(found.__getitem__, map(words.__getitem__, where)))
    flat = list(chain.from_iterable(expansions))
    index = chain.from_iterable(map(repeat, where, map(len, expansions)))
    return Stream(
        list(map(add, index, map(_POS, flat))),
        list(map(_TOK, flat)),
        list(map(_CON, flat)),
        list(map(_VIA, flat)),
    )


_TOK, _CON, _VIA = itemgetter(1), itemgetter(2), itemgetter(3)


def _where(flags: Iterable[bool]) -> list[int]:
    return list(compress(range(1 << 62), flags))


def _leet_hits(words: Sequence[str], distinct: set[str]) -> Stream:
    # Only tokens that are not pure letters can hide leetspeak ("1gn0r3", "$ystem").
    # Fold each distinct token once: floods of one leet word stay cheap.
    folded = {w: leet_fold(w) for w in distinct if not w.isalpha() and w not in LATIN_INDEX}
    return _mapped(words, {w: f for w, f in folded.items() if f in LATIN_INDEX}, "leet")


def collapse_runs(hits: list[Hit]) -> list[Hit]:
    """Keep the first two and the last hit of a run of one repeated token.

    "ai ai ai ... ai" cannot advance any sequence further than two copies do,
    and without this a flood of one lexicon word costs work per copy.
    """
    if len(hits) < 4:
        return hits
    return collapse_stream(_from_hits(hits)).hits()


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
    same = bytes(map(eq, tok, tok[1:]))
    if b"\x01\x01\x01" not in same:  # cheap first pass: no run of 4 equal tokens
        return s
    marks = bytes(map(and_, same, map(le, map(sub, pos[1:], pos), repeat(1))))
    if b"\x01\x01\x01" not in marks:
        return s
    keep = bytearray(b"\x01") * len(tok)
    for m in _RUN4_RE.finditer(marks):
        keep[m.start() + 2 : m.end()] = bytes(m.end() - m.start() - 2)
    return s.select(keep)


def _leet_if_needed(word: str, norm: Normalized) -> str:
    return leet_fold(word) if norm.leet_words is not None else word


_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
CJK_SPACE_RE = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
# Same substitution, anchored on the CJK character (a fast charset scan).
_CJK_SPACE_FAST_RE = re.compile(f"([{_CJK}])\\s+(?=[{_CJK}])")


def cjk_text(folded: str) -> str:
    """The text the CJK stream runs on: spaces between CJK characters removed
    ("忽 略 指 令" is "忽略指令"); empty when there is no CJK at all."""
    if not CJK_ANY_RE.search(folded):
        return ""
    return _CJK_SPACE_FAST_RE.sub(r"\1", folded)


def _split_hits(pattern: re.Pattern[str], text: str) -> tuple[list[int], list[str]]:
    parts = pattern.split(text)
    if len(parts) == 1:
        return [], []
    ends = list(accumulate(map(len, parts)))
    return ends[0::2][:-1], parts[1::2]  # match k starts where part 2k ends


def cjk_hits(text: str) -> list[Hit]:
    return cjk_stream(text).hits()


def _cjk_split(text: str) -> tuple[list[int], list[str]]:
    """``_split_hits(_CJK_SPLIT_RE, text)``, from two cheaper scans merged by start."""
    starts, tokens = _split_hits(_CJK_WIDE_SPLIT_RE, text)
    if _CJK_ASCII_SPLIT_RE is None:
        return starts, tokens
    a_starts, a_tokens = _split_hits(_CJK_ASCII_SPLIT_RE, text)
    if not a_tokens:
        return starts, tokens
    if not tokens:
        return a_starts, a_tokens
    # Starts are distinct (matches never overlap): sort the concatenation.
    all_starts = starts + a_starts
    order = sorted(range(len(all_starts)), key=all_starts.__getitem__)
    all_tokens = tokens + a_tokens
    return list(map(all_starts.__getitem__, order)), list(map(all_tokens.__getitem__, order))


def cjk_stream(text: str) -> Stream:
    starts, tokens = _cjk_split(text)
    main = Stream(
        list(map(mul, starts, repeat(CJK_POS_SCALE))),
        tokens,
        list(map(CJK_INDEX.__getitem__, tokens)),
    )
    if "dan" in text or "prompt" in text or "jailbreak" in text:
        starts, tokens = _split_hits(_CJK_LATIN_SPLIT_RE, text)
        if tokens:
            extra = Stream(
                list(map(mul, starts, repeat(CJK_POS_SCALE))),
                tokens,
                [frozenset(CJK_EXTRA_LATIN[t]) for t in tokens],
            )
            return _merge([main, extra])
    return main


class SequenceSet:
    """Compiled automata for many sequences; ``run`` is linear in the hits.

    Each concept set maps to a precomputed list of (sequence, step, gap to the
    previous step, is-last, blockers) entries, later steps first so one token
    never advances two steps of the same sequence. Once a group (a rule) has
    matched, its sequences are dropped: one match per rule is all we report,
    and inputs stuffed with attack words stop costing work.

    Before the walk, sequences that cannot match (a step none of whose concepts
    occurs in the hits) are dropped, and hits that feed none of the remaining
    sequences are filtered out with a C-level pass. Floods of a few known words
    therefore cost a set operation, not a walk.
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
        self._base = list(accumulate((len(s.steps) for s in self.sequences), initial=0))
        self._cache: dict[Concepts, list[tuple]] = {}
        self._viable_cache: dict[frozenset[Concepts], tuple[frozenset[int], frozenset[str]]] = {}

    def _entries(self, concepts: Concepts) -> list[tuple]:
        entries = self._cache.get(concepts)
        if entries is None:
            pairs = sorted(
                {e for c in concepts for e in self._by_concept.get(c, ())}, key=lambda e: -e[1]
            )
            entries = [self._entry(si, step) for si, step in pairs]
            self._cache[concepts] = entries
        return entries

    def _entry(self, si: int, step: int) -> tuple:
        seq = self.sequences[si]
        gap = seq.gaps[step - 1] if step else 0.0
        return (
            self._base[si] + step,
            step,
            gap,
            step == len(seq.steps) - 1,
            tuple(seq.unless),
            self.groups[si],
            si,
        )

    def _viable(self, present_sets: frozenset[Concepts]) -> tuple[frozenset[int], frozenset[str]]:
        """Sequences whose every step has a present concept, and their blockers."""
        found = self._viable_cache.get(present_sets)
        if found is None:
            present = frozenset().union(*present_sets)
            seqs = frozenset(
                si
                for si, s in enumerate(self.sequences)
                if all(not step.isdisjoint(present) for step in s.steps)
            )
            blockers = frozenset().union(*(self.sequences[si].unless for si in seqs))
            found = (seqs, blockers)
            if len(self._viable_cache) < 4096:
                self._viable_cache[present_sets] = found
        return found

    def run(self, hits: Iterable[Hit]) -> list[SeqMatch]:
        return self.run_stream(_from_hits(hits))

    def run_stream(self, stream: Stream) -> list[SeqMatch]:
        if not stream.tok:
            return []
        present_sets = frozenset(stream.con)
        active, blockers = self._viable(present_sets)
        if not active:
            return []
        done: set[int] = set()  # groups that matched
        excluded = 0  # len(done) when ``table`` was last pruned
        table = self._table(present_sets, active, done)
        live = sum(map(len, table.values()))  # entries left in ``table``
        watch = {cs: tuple(cs & blockers) for cs in present_sets} if blockers else {}
        relevant = {cs for cs in present_sets if table[cs] or watch.get(cs)}
        if len(relevant) < len(present_sets):
            stream = stream.select(map(relevant.__contains__, stream.con))
        # Hits are made lazily: a walk that stops early never builds the rest.
        hits = zip(stream.pos, stream.tok, stream.con, stream.vias(), strict=False)
        nslots = self._base[-1]
        # Latest prefix match per (sequence, step): its position, and (start, via, first token).
        st_pos: list[float | None] = [None] * nslots
        st_meta: list[tuple | None] = [None] * nslots
        matched: list[SeqMatch] = []
        last_seen: dict[str, float] = {}
        for pos, token, concepts, via in hits:
            entries = table[concepts]
            if entries:
                meta0 = None
                for slot, step, gap, last, unless, group, si in entries:
                    if group in done:
                        continue
                    if step == 0:
                        if unless and _blocked(pos, unless, last_seen):
                            continue
                        if meta0 is None:
                            meta0 = (pos, via, token)
                        st_pos[slot] = pos
                        meta = st_meta[slot] = meta0
                    else:
                        prev = st_pos[slot - 1]
                        if prev is None or not 0 < pos - prev <= gap:
                            continue
                        pm = st_meta[slot - 1]
                        st_pos[slot] = pos
                        meta = st_meta[slot] = (pm[0], pm[1] or via, pm[2])
                    if last:
                        done.add(group)
                        matched.append(SeqMatch(si, meta[0], pos, meta[1], meta[2], token))
                if len(done) != excluded:  # a rule matched: drop its sequences
                    # Only the lists holding entries of a matched group change
                    # (rebuilt as new lists: ``entries`` may be one being walked).
                    for cs, ents in table.items():
                        if ents and any(e[5] in done for e in ents):
                            kept = [e for e in ents if e[5] not in done]
                            live -= len(ents) - len(kept)
                            table[cs] = kept
                    excluded = len(done)
                    if not live:
                        break  # nothing left that could match
            if watch:
                for c in watch.get(concepts, ()):
                    last_seen[c] = pos
        return matched

    def _table(
        self, present_sets: frozenset[Concepts], active: frozenset[int], done: set[int]
    ) -> dict[Concepts, list[tuple]]:
        """Entries per present concept set, for the viable sequences of unmatched rules."""
        return {
            cs: [e for e in self._entries(cs) if e[6] in active and e[5] not in done]
            for cs in present_sets
        }


def _blocked(pos: float, unless: tuple[str, ...], last_seen: dict[str, float]) -> bool:
    return any(0 < pos - last_seen.get(c, -1e9) <= BLOCK_GAP for c in unless)
