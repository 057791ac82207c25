"""Lexicon hits in the Latin-script word stream, with the obfuscations undone.

Each source of hits is its own stream, merged by position at the end:

- plain words (and words the normaliser joined from spaced-out letters: via "spacing");
- accented words whose bare form is a lexicon word ("ìgnòrè");
- leetspeak ("1gn0r3", "$ystem": via "leet");
- glued words split into lexicon words ("ignorepreviousinstructions": via "glued");
- hyphenated words ("ig-no-re": via "hyphens"; "ignore-les": its parts).

Occurrences are found with C-level ``map``/``compress`` passes; Python code runs
once per *distinct* token (a flood of one word costs one lookup) and once per hit
that glued or hyphenated tokens recover.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import chain, compress, count, filterfalse, islice, repeat
from operator import add, itemgetter

from .hits import EMPTY, Stream, indices_where, merge
from .lexicon_index import LATIN_INDEX, Concepts, segment
from .normalize import Normalized, leet_fold, strip_accents

GLUED_ALONE = 5  # a lexicon word this long counts inside a long token on its own
SEGMENT_MIN = 12  # tokens this long may be glued words: "ignorepreviousinstructions"
SEGMENT_MAX = 256
MAX_SEGMENTED = 256  # glued-word candidates examined per prompt
NON_LATIN = "\u0250"  # tokens starting at or above this are not Latin script
# Sub-positions keep order inside a token: i, i+0.01, i+0.02... (capped at 0.99).
_SUB_OFFSETS = [min(k, 99) / 100 for k in range(SEGMENT_MAX + 1)]
_GLUE_VIA = ("glued", "spacing")  # indexed by "was this token joined from spaced letters"


def latin_stream(norm: Normalized) -> Stream:
    """Every lexicon hit in ``norm.words``, ordered by position."""
    words = norm.words
    where = indices_where(map(LATIN_INDEX.__contains__, words))
    tokens = list(map(words.__getitem__, where))
    vias = None
    if norm.joined:
        spaced = dict.fromkeys(norm.joined, "spacing")
        vias = list(map(spaced.get, where, repeat("")))
    # Whole-token positions stay ints (an int compares and subtracts as its float does).
    parts = [Stream(where, tokens, list(map(LATIN_INDEX.__getitem__, tokens)), vias)]
    # The distinct tokens (their hashes are cached, so one C-level pass): the obfuscation
    # streams below look at each distinct token once, and skip the full passes over
    # ``words`` when no distinct token can be theirs.
    distinct = set(words)
    if not norm.is_ascii:
        parts.append(_accent_stream(words, distinct))
    if norm.leet_words is not None:
        parts.append(_leet_stream(words, distinct))
    parts.append(_glued_stream(words, norm, distinct))
    parts.append(_hyphen_stream(words, distinct))
    return merge(parts)


def _occurrences(words: Sequence[str], found: dict[str, str], via: str) -> Stream:
    """Hits for every occurrence of a key of ``found`` (word → lexicon token)."""
    if not found:
        return EMPTY
    where = indices_where(map(found.__contains__, words))
    tokens = list(map(found.__getitem__, map(words.__getitem__, where)))
    return Stream(
        where,
        tokens,
        list(map(LATIN_INDEX.__getitem__, tokens)),
        None if not via else [via] * len(where),
    )


def _accent_stream(words: Sequence[str], distinct: set[str]) -> Stream:
    # "ìgnòrè": accents used as obfuscation; lexicon words are indexed unaccented.
    bare: dict[str, str] = {}
    # C-level filters first: most tokens are ASCII (nothing to strip) or lexicon words.
    for w in filterfalse(LATIN_INDEX.__contains__, filterfalse(str.isascii, distinct)):
        if w[0] >= NON_LATIN:  # not Latin script
            continue
        b = _strip_cached(w)
        if b in LATIN_INDEX:
            bare[w] = b
    return _occurrences(words, bare, "")


@lru_cache(maxsize=8192)
def _strip_cached(word: str) -> str:
    return strip_accents(word)


def _leet_stream(words: Sequence[str], distinct: set[str]) -> Stream:
    # Only tokens that are not pure letters can hide leetspeak ("1gn0r3", "$ystem").
    # Fold each distinct token once: floods of one leet word stay cheap.
    folded = {w: leet_fold(w) for w in distinct if not w.isalpha() and w not in LATIN_INDEX}
    return _occurrences(words, {w: f for w, f in folded.items() if f in LATIN_INDEX}, "leet")


def _glued_stream(words: Sequence[str], norm: Normalized, distinct: set[str]) -> Stream:
    """Lexicon words inside long tokens and inside words joined from spaced letters.

    Python work once per *distinct* candidate word, so thousands of joined copies
    of one spaced-out word cost C-level passes.
    """
    leet = norm.leet_words is not None
    # Every candidate is a long token or a joined one: when the few distinct such words
    # hold no lexicon word, neither does any occurrence (no positions to compute).
    few = set(compress(distinct, map(SEGMENT_MIN.__le__, map(len, distinct))))
    if norm.joined:
        few.update(map(words.__getitem__, norm.joined))
    if len(few) <= _FEW_LONG and not any(_glue_parts(w[:SEGMENT_MAX], leet) for w in few):
        return EMPTY
    # Only the first MAX_SEGMENTED long tokens are candidates: stop looking there.
    is_long = map(SEGMENT_MIN.__le__, map(len, words))
    long_ones = list(islice(compress(count(), is_long), MAX_SEGMENTED))
    if not long_ones and not norm.joined:
        return EMPTY
    candidates = sorted(set(long_ones) | norm.joined)
    cand_words = list(map(words.__getitem__, candidates))
    found: dict[str, tuple[str, ...]] = {}  # candidate word → the lexicon words inside it
    for w in set(cand_words):
        parts = _glue_parts(w[:SEGMENT_MAX], leet)
        if parts:
            found[w] = parts
    if not found:
        return EMPTY
    keep = list(map(found.__contains__, cand_words))
    where = list(compress(candidates, keep))
    parts_at = list(map(found.__getitem__, compress(cand_words, keep)))
    counts = list(map(len, parts_at))
    # Occurrence i with n parts gives positions i + 0.00, i + 0.01, ... i + (n-1)/100.
    starts = chain.from_iterable(map(repeat, where, counts))
    # _SUB_OFFSETS[:n] per occurrence, sliced in C (thousands of joined copies are common).
    offsets = chain.from_iterable(map(_SUB_OFFSETS.__getitem__, map(slice, repeat(0), counts)))
    pos = list(map(add, starts, offsets))
    tok = list(chain.from_iterable(parts_at))
    was_joined = map(norm.joined.__contains__, where)
    via = list(chain.from_iterable(map(repeat, map(_GLUE_VIA.__getitem__, was_joined), counts)))
    return Stream(pos, tok, list(map(LATIN_INDEX.__getitem__, tok)), via)


_FEW_LONG = 32  # distinct long tokens looked at before any position is computed


@lru_cache(maxsize=8192)
def _glue_parts(word: str, leet: bool) -> tuple[str, ...]:
    """The lexicon words glued inside ``word`` (cut at SEGMENT_MAX); none for a lexicon
    word itself or a non-Latin one (CJK runs have their own stream)."""
    if word in LATIN_INDEX or word[0] >= NON_LATIN:
        return ()
    plain = leet_fold(word) if leet else word
    parts = segment(plain)
    # One short word inside a long one is the language's own ("mode" in the Turkish
    # "modellerinin"): alone, it counts only when it fills half the token. Several words,
    # or a long one, are glued on purpose, padding or not ("ignorepreviousinstructionszzzz").
    if len(parts) == 1 and len(parts[0]) < GLUED_ALONE and len(parts[0]) * 2 < len(plain):
        return ()
    return tuple(parts)


def _hyphen_parts(word: str) -> list[tuple[float, str, Concepts, str]]:
    """(offset, token, concepts, via) for the lexicon words in a hyphenated word.

    "ig-no-re" → "ignore"; "ignore-les", "révèle-moi" → their parts.
    """
    parts = word.split("-")
    whole = "".join(parts)
    if whole in LATIN_INDEX:
        return [(0.0, whole, LATIN_INDEX[whole], "hyphens")]
    return [
        (k / 100, part, LATIN_INDEX[part], "")
        for k, part in enumerate(parts[:99])
        if part in LATIN_INDEX
    ]


_OFFSET, _TOKEN, _CONCEPTS, _VIA = (itemgetter(k) for k in range(4))  # of a _hyphen_parts item


def _hyphen_stream(words: Sequence[str], distinct: set[str]) -> Stream:
    hyphenated = {w for w in distinct if "-" in w}
    found = {w: p for w in hyphenated if w not in LATIN_INDEX and (p := _hyphen_parts(w))}
    if not found:
        return EMPTY
    # Every occurrence i expands to the parts of its word, at i + offset (C-level).
    where = indices_where(map(found.__contains__, words))
    expansions = list(map(found.__getitem__, map(words.__getitem__, where)))
    flat = list(chain.from_iterable(expansions))
    starts = chain.from_iterable(map(repeat, where, map(len, expansions)))
    return Stream(
        list(map(add, starts, map(_OFFSET, flat))),
        list(map(_TOKEN, flat)),
        list(map(_CONCEPTS, flat)),
        list(map(_VIA, flat)),
    )
