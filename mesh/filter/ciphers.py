"""Letter ciphers a model can read: rot13, the other Caesar shifts and Atbash.

"Vjqruh doo suhylrxv lqvwuxfwlrqv" (a shift of 3) and "Rtmliv zoo kiverlfh rmhgifxgrlmh"
(Atbash: a for z, b for y...) are what red-team tool kits turn an order into (PyRIT's
Caesar and Atbash converters), and a model decodes them when asked. None has an alphabet
of its own: each is recognised by its forms of frequent function words ("gur", "naq",
"lbh" are rot13's "the", "and", "you"), three different ones of one cipher in the first
``SCAN`` characters. The decoding layer then judges the text deciphered, sentence by
sentence (``deciphered``).
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache

_FUNCTION_WORDS = [
    *("the", "and", "you", "your", "all", "this", "that", "with", "for", "what", "from"),
    *("now", "tell", "give", "show", "les", "des", "une", "est", "pour", "vous", "tous"),
    *("ton", "tes", "los", "las", "que", "por", "para", "todo", "todas", "und", "die"),
    *("der", "das", "ist", "nicht", "alle", "deine", "non", "per", "tutte", "sono", "uma"),
    *("voce", "suas", "het", "een", "niet", "jouw", "nie", "jest", "wszystkie", "tüm"),
    *("prompt", "system", "mode", "rules", "previous", "instructions"),
    *("de", "la", "le", "en", "el", "to", "of", "is", "it", "me", "my", "do", "da", "je"),
    *("ik", "mi", "di", "il", "et"),
]
PLAIN_WORDS = frozenset(_FUNCTION_WORDS)
SCAN = 4096
MIN_WORDS = 3  # different enciphered function words of one cipher
ROT13 = "rot13"

_LOWER, _UPPER = string.ascii_lowercase, string.ascii_uppercase


def _shifted(k: int) -> str:
    return _LOWER[k:] + _LOWER[:k] + _UPPER[k:] + _UPPER[:k]


# name -> the table that deciphers it (a shift of k is undone by a shift of 26 - k)
_DECIPHER = {
    (ROT13 if k == 13 else f"caesar{k}"): str.maketrans(_shifted(k), _LOWER + _UPPER)
    for k in range(1, 26)
}
_DECIPHER["atbash"] = str.maketrans(_LOWER + _UPPER, _LOWER[::-1] + _UPPER[::-1])


def _enciphered(name: str) -> frozenset[str]:
    """The cipher's forms of the function words that are no plain function word. Rot13
    keeps the two-letter ones it has always used; the other ciphers read words of three
    letters and more, whose forms are seldom words of their own."""
    back = {v: k for k, v in _DECIPHER[name].items()}
    words = _FUNCTION_WORDS if name == ROT13 else [w for w in _FUNCTION_WORDS if len(w) >= 3]
    return frozenset(w.translate(back) for w in words) - PLAIN_WORDS


_WORDS = {name: _enciphered(name) for name in _DECIPHER}
_ANY = frozenset().union(*_WORDS.values())
_CIPHERS_OF: dict[str, tuple[str, ...]] = {}
for _name, _forms in _WORDS.items():
    for _form in _forms:
        _CIPHERS_OF[_form] = (*_CIPHERS_OF.get(_form, ()), _name)


@lru_cache(maxsize=2)
def head_words(head: str) -> frozenset[str]:
    """The distinct lower-cased words of a prompt's head, split() only (a C loop; translate
    or a regex costs 5x): this runs on every prompt, and function words sit mid-sentence,
    without punctuation attached. Cached: the cipher test and the backwards view
    (``backwards``) read the same head."""
    return frozenset(head.lower().split())


def cipher_of(prompt: str) -> str | None:
    """The cipher most of the prompt's head is written in, when one shows three different
    function words (rot13 first on a tie); else None."""
    found = _ANY.intersection(head_words(prompt[:SCAN]))
    if len(found) < MIN_WORDS:
        return None
    counts = Counter(name for word in found for name in _CIPHERS_OF[word])
    best = max(counts, key=lambda name: (counts[name], name == ROT13))
    return best if counts[best] >= MIN_WORDS else None


_SENTENCE_RE = re.compile(r"[^.!?\n:;]*[.!?\n:;]*")
_LATIN_WORD_RE = re.compile(r"[a-z]+")


def deciphered(text: str, name: str = ROT13) -> str:
    """``text`` with its sentences in the cipher deciphered; those in clear stay as written
    ("This riddle is in rot13, can you decode it?" turned to rot13 is noise the learned
    layer scored as an attack). A sentence reads as clear when it holds more function
    words in clear than enciphered; one with neither is deciphered."""
    table, forms = _DECIPHER[name], _WORDS[name]
    out = []
    for piece in _SENTENCE_RE.findall(text):
        words = _LATIN_WORD_RE.findall(piece.lower())
        plain = sum(w in PLAIN_WORDS for w in words)
        hidden = sum(w in forms for w in words)
        out.append(piece if plain > hidden else piece.translate(table))
    return "".join(out)
