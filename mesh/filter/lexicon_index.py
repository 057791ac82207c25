"""The lexicon compiled for matching: word → concepts tables and literal alternations.

Latin words are looked up in a dict (one hash per token). CJK has no spaces, so its
terms are found by one regex alternation of literals, factored as a trie (see
:func:`trie_pattern`): no backtracking beyond the length of one term.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .lexicon import CJK_LANGS, LATIN_LANGS, LEXICON, Lexicon
from .normalize import fold_text, strip_accents

Concepts = frozenset[str]
CJK_TAGGED = frozenset({"IGN", "SYS"})  # these also get an "<X>_CJK" concept in CJK
GLUE_MIN_LETTERS = 4  # shorter words ("no", "all") would match inside everything
_BRACES = re.compile(r"^(.*?)\{([^{}]*)\}(.*)$")


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
                # as folded prompts spell it: Russian look-alike letters and Turkish ı
                # become Latin, or the word never matches
                for word in expand(fold_text(raw)):
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


def trie_pattern(words: Iterable[str]) -> str:
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
        node[""] = {}  # a word ends here

    def build(node: dict[str, dict]) -> str:
        alts = [re.escape(ch) + build(child) for ch, child in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return build(trie)


def alternation(words: Iterable[str]) -> re.Pattern[str]:
    # Longest match first so "系统提示词" wins over "系统提示"; literals only: no backtracking.
    return re.compile(trie_pattern(words))


def capturing(words: Iterable[str]) -> re.Pattern[str]:
    """The alternation as one capturing group: ``split`` then returns the matches and
    the text between them in one C-level call (positions by cumulative lengths)."""
    return re.compile(f"({trie_pattern(words)})")


# Glued Latin words are split with the longer lexicon words only.
GLUE_WORDS = frozenset(w for w in LATIN_INDEX if len(w) >= GLUE_MIN_LETTERS)
GLUE_RE = alternation(GLUE_WORDS)


def segment(word: str) -> list[str]:
    """Greedy longest lexicon words inside a glued token (one C-level scan).

    Leftmost-longest, non-overlapping: the same as walking the token and taking
    the longest lexicon word (>= 4 letters) that starts at each position.
    """
    return GLUE_RE.findall(word)
