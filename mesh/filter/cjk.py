"""Lexicon hits in CJK text, where words are not separated by spaces.

Terms are found by regex alternations of literals (tries: see
:func:`lexicon_index.trie_pattern`), with ``split`` so the matches and their
offsets come from one C-level call. Positions are character offsets scaled by
:data:`CJK_POS_SCALE`, so the word gaps the rules use also fit CJK.
"""

from __future__ import annotations

import re
from itertools import accumulate, repeat
from operator import itemgetter, mul

from .anchored import Literals
from .hits import Stream, merge
from .lexicon import CJK_EXTRA_LATIN
from .lexicon_index import CJK_INDEX, capturing
from .normalize import is_latin1

CJK_POS_SCALE = 0.3  # CJK distances: about three characters per "word"
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
CJK_ANY_RE = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Spaces between two CJK characters, anchored on the first one (a fast charset scan).
_CJK_SPACE_RE = re.compile(f"([{_CJK}])\\s+(?=[{_CJK}])")

# The CJK terms are found by two scans: the wide terms (no ASCII character in any of
# them), leftmost-longest in one native pass (Aho-Corasick: the matches of their trie
# alternation, without its class test at every character, 0.3 ms at 100 KB), and the few
# ASCII terms listed under zh/ja ("ai"). A match of one kind can never overlap one of the
# other, so together they give exactly the matches of a single alternation.
_ASCII_TERMS = tuple(sorted(w for w in CJK_INDEX if w.isascii()))
assert all(not any(c.isascii() for c in w) for w in CJK_INDEX if w not in _ASCII_TERMS)
WIDE_TERMS = Literals(w for w in CJK_INDEX if not w.isascii())
_ASCII_SPLIT_RE = capturing(_ASCII_TERMS) if _ASCII_TERMS else None
# The few Latin words CJK rules need ("dan", "prompt", "jailbreak").
_LATIN_SPLIT_RE = capturing(CJK_EXTRA_LATIN)


def cjk_text(folded: str) -> str:
    """The text the CJK stream runs on: spaces between CJK characters removed
    ("忽 略 指 令" is "忽略指令"); empty when there is no CJK at all."""
    if is_latin1(folded) or not CJK_ANY_RE.search(folded):  # CJK is beyond Latin-1
        return ""
    return _CJK_SPACE_RE.sub(r"\1", folded)


def _split_hits(pattern: re.Pattern[str], text: str) -> tuple[list[int], list[str]]:
    """(start offsets, matched terms) of a capturing alternation."""
    parts = pattern.split(text)
    if len(parts) == 1:
        return [], []
    ends = list(accumulate(map(len, parts)))
    return ends[0::2][:-1], parts[1::2]  # match k starts where part 2k ends


def _literal_hits(terms: Literals, text: str) -> tuple[list[int], list[str]]:
    """(start offsets, matched terms), as ``_split_hits`` of the terms' alternation."""
    spans = list(terms.spans(text))
    starts = list(map(itemgetter(0), spans))
    return starts, list(map(text.__getitem__, map(slice, starts, map(itemgetter(1), spans))))


def _term_hits(text: str) -> tuple[list[int], list[str]]:
    """The wide and the ASCII scans, merged by start."""
    starts, tokens = _literal_hits(WIDE_TERMS, text)
    if _ASCII_SPLIT_RE is None:
        return starts, tokens
    a_starts, a_tokens = _split_hits(_ASCII_SPLIT_RE, text)
    if not a_tokens:
        return starts, tokens
    if not tokens:
        return a_starts, a_tokens
    # Starts are distinct (matches never overlap): sort the concatenation.
    all_starts = starts + a_starts
    order = sorted(range(len(all_starts)), key=all_starts.__getitem__)
    all_tokens = tokens + a_tokens
    return list(map(all_starts.__getitem__, order)), list(map(all_tokens.__getitem__, order))


def _scaled(starts: list[int]) -> list[float]:
    return list(map(mul, starts, repeat(CJK_POS_SCALE)))


def cjk_stream(text: str) -> Stream:
    """Every lexicon hit in ``text`` (the output of :func:`cjk_text`), by position."""
    starts, tokens = _term_hits(text)
    main = Stream(_scaled(starts), tokens, list(map(CJK_INDEX.__getitem__, tokens)))
    if "dan" in text or "prompt" in text or "jailbreak" in text:
        starts, tokens = _split_hits(_LATIN_SPLIT_RE, text)
        if tokens:
            concepts = [frozenset(CJK_EXTRA_LATIN[t]) for t in tokens]
            return merge([main, Stream(_scaled(starts), tokens, concepts)])
    return main
