"""Normalised forms of a prompt, built once and shared by the pattern rules.

Every step is a C-level pass (``unicodedata``, ``str.translate``, ``re.sub``,
``str.split``) so the cost stays linear and small even for 100 KB prompts; the
only Python loops run over the few tokens that need them.

Forms:
* ``folded``: NFKC, casefold, invisible/format characters removed, Unicode tag
  characters decoded to ASCII (so "ASCII smuggling" becomes visible), and
  Cyrillic/Greek/Armenian lookalikes folded to Latin. Punctuation is kept:
  the markup checks run on it.
* ``words``: word tokens of ``folded`` (punctuation → space, stop words
  dropped), with spaced-out letters ("i g n o r e") joined.
* ``leet_words``: the same tokens with leetspeak folded ("1gn0r3" → "ignore"),
  only when some token mixes letters and digits/symbols.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from itertools import filterfalse
from typing import Generic, TypeVar

import numpy as np

from . import fast_re, token_chars
from .quoted_regex import without_regex_syntax
from .spaced import join_compounds, join_spaced
from .styled import SCRIPT_LOOKALIKES, SMALL_CAPITALS, unstyled_astral

# Zero-width, joiners, bidi embeddings/overrides/isolates, invisible operators,
# soft hyphen, Mongolian vowel separator, BOM, variation selectors, Hangul fillers.
INVISIBLE_RANGES: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0x1BCA0, 0x1BCA3),
    (0xE0000, 0xE001F),
    (0xE007F, 0xE007F),
    (0xE0100, 0xE01EF),
)
TAG_FIRST, TAG_LAST = 0xE0020, 0xE007E  # tag characters mirror printable ASCII


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


INVISIBLE_RE = re.compile(f"[{_char_class(INVISIBLE_RANGES)}]+")
TAG_RE = re.compile(f"[\\U{TAG_FIRST:08x}-\\U{TAG_LAST:08x}]+")
# Cheap pre-check (one C scan with a compact class): BMP invisible/bidi/filler
# characters or anything outside the BMP (tags, variation selectors, styled
# letters, emoji). Text without any of these skips every invisible-character pass.
_BMP_INVISIBLE = "".join(f"\\u{a:04x}-\\u{b:04x}" for a, b in INVISIBLE_RANGES if b < 0x10000)
# Combining accents that NFKC leaves standing (no precomposed letter: "g̈n̈r̃"), and those
# casefold leaves (of "İ", "ẗ" and 25 more letters, which it splits into a letter and a
# combining accent): dropped after casefold, as the accents of "ìgnòrè" are, so "i̇g̈n̈ōr̃ē"
# and "instrucẗions" are words, not pieces.
_CASEFOLD_ACCENTED = "İǰΐΰẖẗẘẙὐὒὔὖᾶᾷῆῇῒΐῖῗῢΰῤῦῧῶῷ"
_LOOSE_ACCENT_RE = re.compile("[\u0300-\u036f]+")
SPECIAL_RE = re.compile(
    f"[{_BMP_INVISIBLE}\\u0300-\\u036f{_CASEFOLD_ACCENTED}\\u2066-\\u2069\\U00010000-\\U0010ffff]"
)


def is_latin1(text: str) -> bool:
    """No character past U+00FF: one C-level copy (or an early failure), far cheaper than
    a regex scan for characters that are all beyond Latin-1."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


T = TypeVar("T")


class LastText(Generic[T]):
    """What one function computed for the last few texts it saw, by identity: the
    structure layer, the normaliser and the rules look at the same prompt object in turn
    (and, for an NFKC-normalised prompt without invisible characters, fold that very
    object), so each later full pass is a lookup. A few entries, not one: the passes over
    a prompt's pieces (a head, a quote) came between and evicted the prompt (three NFKC
    passes of a 100 KB prompt, ~1 ms each). No hashing of the text."""

    __slots__ = ("entries",)
    SIZE = 4

    def __init__(self) -> None:
        self.entries: tuple[tuple[str, T], ...] = ()

    def get(self, text: str) -> T | None:
        for seen, value in self.entries:  # one read: another thread may replace it meanwhile
            if seen is text:
                return value
        return None

    def put(self, text: str, value: T) -> T:
        self.entries = ((text, value), *self.entries[: self.SIZE - 1])
        return value


_special_of: LastText[bool] = LastText()
_casefold_of: LastText[str] = LastText()
_confusable_of: LastText[bool] = LastText()
_nfkc_of: LastText[str] = LastText()


def forget_last() -> None:
    """Start a new prompt: nothing is reused from the previous one (``engine.analyse``
    calls this first, so only the passes of one check share their work)."""
    for cache in (_special_of, _casefold_of, _confusable_of, _nfkc_of):
        cache.entries = ()


def has_special(text: str) -> bool:
    """False when ``text`` has no invisible, bidi, tag or astral character, nor a loose
    combining accent."""
    found = _special_of.get(text)
    if found is not None:
        return found
    # The soft hyphen is the only one below U+0100.
    return _special_of.put(
        text, "\xad" in text if is_latin1(text) else SPECIAL_RE.search(text) is not None
    )


def nfkc(text: str) -> str:
    """NFKC of ``text``, the same object when it already is (remembered for the last text)."""
    if text.isascii():
        return text
    done = _nfkc_of.get(text)
    if done is None:
        done = (
            text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)
        )
        _nfkc_of.put(text, done)
    return done


def plain_fold(raw: str) -> str:
    """NFKC + casefold, without the look-alike folding: the form in which Cyrillic is
    still Cyrillic (rules written per script read this one; shared, so computed once)."""
    return casefold(nfkc(raw))


def casefold(text: str) -> str:
    """``text.casefold()`` (remembered for the last text: see :class:`LastText`)."""
    folded = _casefold_of.get(text)
    return folded if folded is not None else _casefold_of.put(text, text.casefold())


# Lowercase lookalikes (the text is casefolded first). NFKC already folds
# full-width, mathematical and circled letters; it leaves these alone.
CONFUSABLES: dict[str, str] = {
    # Cyrillic
    "а": "a",
    "в": "b",
    "е": "e",
    "ё": "e",
    "є": "e",
    "ѕ": "s",
    "і": "i",
    "ї": "i",
    "ј": "j",
    "к": "k",
    "м": "m",
    "н": "h",
    "о": "o",
    "р": "p",
    "с": "c",
    "т": "t",
    "у": "y",
    "ф": "f",
    "х": "x",
    "ч": "4",
    "ь": "b",
    "ԁ": "d",
    "ԛ": "q",
    "ԝ": "w",
    "һ": "h",
    "ӏ": "l",
    "ү": "y",
    "ғ": "f",
    "ɡ": "g",
    "ɑ": "a",
    "ɩ": "i",
    "ı": "i",
    "ȷ": "j",
    "ꮃ": "w",
    # Greek
    "α": "a",
    "β": "b",
    "γ": "y",
    "δ": "d",
    "ε": "e",
    "η": "n",
    "ι": "i",
    "κ": "k",
    "ν": "v",
    "ο": "o",
    "ρ": "p",
    "τ": "t",
    "υ": "u",
    "χ": "x",
    "ω": "w",
    "ς": "c",
    "σ": "o",
    "μ": "u",
    "ϲ": "c",
    "ϳ": "j",
    # Armenian
    "օ": "o",
    "ս": "u",
    "ո": "n",
    "հ": "h",
    "ց": "g",
    "զ": "q",
}
CONFUSABLES.update(SMALL_CAPITALS)  # "ɪɢɴᴏʀᴇ": Latin, but no letter NFKC folds
CONFUSABLES.update(SCRIPT_LOOKALIKES)  # Cherokee, Lisu
CONFUSABLE_RE = re.compile("[" + "".join(CONFUSABLES) + "]")
_CONFUSABLE_TABLE = str.maketrans(CONFUSABLES)
# The same map as a lookup array over the BMP (every lookalike is in it): ``str.translate``
# looks each character up in a dict once the text is wider than Latin-1, ~55 ns a
# character (5.6 ms for 100 KB of Russian); one gather over the code points is ~10x faster.
_CONFUSABLE_LUT = np.arange(0x10000, dtype=np.uint32)
_CONFUSABLE_LUT[[ord(k) for k in CONFUSABLES]] = [ord(v) for v in CONFUSABLES.values()]
_GATHER_FROM = 256  # characters: below, translate is cheaper than the array round trip


def folded_regex(pattern: str) -> re.Pattern[str]:
    """A regex that reads folded text (``fold_text``): its literal look-alike letters are
    folded as the text's were, or Russian "системн" never matches the folded "cиctemh" and
    Turkish "yukarıdaki" never matches "yukaridaki". Regex syntax is ASCII, which the fold
    leaves alone. Guarded by its first characters (``fast_re``): these are word lists."""
    return fast_re.compile(pattern.translate(_CONFUSABLE_TABLE))


def fold_confusables(text: str) -> str:
    """``text.translate(_CONFUSABLE_TABLE)``."""
    if len(text) < _GATHER_FROM:
        return text.translate(_CONFUSABLE_TABLE)
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    bmp = cps < 0x10000
    folded = np.where(bmp, _CONFUSABLE_LUT[np.where(bmp, cps, 0)], cps)
    return folded.tobytes().decode("utf-32-le", "surrogatepass")


# Characters from the table that count as "another script" for mixed-script
# detection (the Latin-script variants ɡ ɑ ɩ ı ȷ are excluded).
SCRIPT_CONFUSABLES = "".join(c for c in CONFUSABLES if unicodedata.name(c).split()[0] != "LATIN")

LEET: dict[str, str] = {
    "0": "o",
    "1": "i",
    "3": "e",
    "4": "a",
    "5": "s",
    "7": "t",
    "8": "b",
    "9": "g",
    "@": "a",
    "$": "s",
    "€": "e",
    "|": "l",
}
_LEET_TABLE = str.maketrans(LEET)
# A letter next to a leet symbol: "1gn0re", "ign@re"; plain numbers do not count.
LEET_HINT_RE = re.compile(r"[^\W\d_][0-9@$€|]|[0-9@$€|][^\W\d_]")
# Same test, anchored on the (rare) leet symbol so the scan is a fast charset skip.
_LEET_HINT_FAST_RE = re.compile(r"[0-9@$€|](?:(?<=[^\W\d_].)|(?=[^\W\d_]))")

# Word tokens: letters/digits plus leet symbols and inner hyphens ("ig-no-re").
_TOKEN_RE = re.compile(r"[\w@$€|-]+")
_COMBINING_RE = re.compile("[\u0300-\u036f]")


@dataclass(slots=True)
class Normalized:
    """All forms of one prompt; build with :func:`normalize`."""

    raw: str
    folded: str
    words: list[str]
    leet_words: list[str] | None = None
    # Indices (into ``words``) of tokens that came from spaced-out letters.
    joined: set[int] = field(default_factory=set)

    @property
    def is_ascii(self) -> bool:
        return self.raw.isascii()


def fold_text(raw: str) -> str:
    """NFKC + casefold + invisible removal + tag decoding + confusable folding (styled
    letters NFKC leaves alone included: ``styled``)."""
    if raw.isascii():
        return raw.lower()
    text = nfkc(raw)
    special = has_special(text)
    if special:
        if TAG_RE.search(text):
            text = TAG_RE.sub(_decode_tags, text)
        text = unstyled_astral(INVISIBLE_RE.sub("", text))
    text = casefold(text)
    if special:
        text = _LOOSE_ACCENT_RE.sub("", text)
    if has_confusable(text):
        text = fold_confusables(text)
    return text


def has_confusable(text: str) -> bool:
    """``CONFUSABLE_RE.search(text)``: every lookalike is beyond Latin-1."""
    found = _confusable_of.get(text)
    if found is not None:
        return found
    return _confusable_of.put(text, not is_latin1(text) and CONFUSABLE_RE.search(text) is not None)


def _decode_tags(match: re.Match[str]) -> str:
    # Tag characters spell ASCII invisibly; decode them so the rules can see it.
    return " " + "".join(chr(ord(c) - 0xE0000) for c in match.group()) + " "


def strip_accents(token: str) -> str:
    """ "précédentes" → "precedentes" (used per token, on lexicon misses only)."""
    return _COMBINING_RE.sub("", unicodedata.normalize("NFD", token))


def leet_fold(text: str) -> str:
    return text.translate(_LEET_TABLE)


# ASCII text: every non-token character becomes a space, then one C-level ``split``
# (str.translate has a fast path for ASCII): the same tokens as ``_TOKEN_RE``, ~8x faster.
_ASCII_SEPARATORS = str.maketrans(
    {c: " " for c in map(chr, range(128)) if not (c.isalnum() or c in "_@$|-")}
)


# Latin-1 text, the same way on its bytes: token bytes kept, every other byte → space.
_LATIN1_SEPARATORS = bytes(b if _TOKEN_RE.fullmatch(chr(b)) else 0x20 for b in range(256))


def tokenize(folded: str) -> list[str]:
    """Word tokens; "-" stays inside words ("ci-dessus", "ig-no-re"): see matcher."""
    if folded.isascii():
        return folded.translate(_ASCII_SEPARATORS).split()
    try:
        data = folded.encode("latin-1")
    except UnicodeEncodeError:
        return token_chars.tokens(folded)
    return data.translate(_LATIN1_SEPARATORS).decode("latin-1").split()


def has_leet_hint(tokens: list[str]) -> bool:
    """``LEET_HINT_RE.search(folded)`` computed on the distinct tokens.

    A letter and a leet symbol next to each other are both token characters, so
    they sit in one token; pure-letter tokens (most of them) cannot match.
    """
    odd = list(filterfalse(str.isalpha, set(tokens)))
    return bool(odd) and _LEET_HINT_FAST_RE.search(" ".join(odd)) is not None


def normalize(raw: str) -> Normalized:
    folded = fold_text(raw)
    tokens = join_compounds(tokenize(without_regex_syntax(folded)))
    words, joined = join_spaced(tokens)
    # Leet folding happens per token in the matcher; this only flags that it may matter.
    leet_words = words if has_leet_hint(tokens) else None
    return Normalized(raw=raw, folded=folded, words=words, leet_words=leet_words, joined=joined)
