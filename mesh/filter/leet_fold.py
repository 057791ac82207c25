"""Leetspeak folding for the learned layer's prepared code points (``learned.prepare``)."""

from __future__ import annotations

import numpy as np

from .normalize import LEET

# Leetspeak is read as the words it spells: "1gn0r3" as "ignore", a gamer's "qu4lcun0" as
# "qualcuno". Digits as n-grams made every leet text look like an encoded attack, and the
# words were lost; the decoding layer does the same for base64. Folded: a LEET digit in a
# token with a Latin letter and no other digit ("h264", "covid19", "2024" stay).
LEET_DIGITS = "013457"
LEET_MAP = np.arange(58, dtype=np.int64)
for _digit in LEET_DIGITS:
    LEET_MAP[ord(_digit)] = ord(LEET[_digit])


# Per code point (clipped past U+024F): 0 separator, 1 Latin letter, 2 LEET digit, 3 other
# digit; one gather classes every character (cheaper than a comparison per class).
_LETTER, _LEET_DIGIT, _OTHER_DIGIT = 1, 2, 3
CHAR_CLASS = np.zeros(0x251, dtype=np.int8)
CHAR_CLASS[ord("a") : ord("z") + 1] = _LETTER
CHAR_CLASS[0xDF:0x250] = _LETTER
CHAR_CLASS[ord("0") : ord("9") + 1] = _OTHER_DIGIT
for _digit in LEET_DIGITS:
    CHAR_CLASS[ord(_digit)] = _LEET_DIGIT


def fold_leet(cps: np.ndarray) -> np.ndarray:
    cls = CHAR_CLASS[np.minimum(cps, len(CHAR_CLASS) - 1)]
    leet = np.flatnonzero(cls == _LEET_DIGIT)
    if not len(leet):
        return cps
    token = np.cumsum(cls == 0)  # each separator starts a new token
    has_letter = np.zeros(int(token[-1]) + 1, dtype=bool)
    has_letter[token[cls == _LETTER]] = True
    has_other_digit = np.zeros_like(has_letter)
    has_other_digit[token[cls == _OTHER_DIGIT]] = True
    fold = leet[has_letter[token[leet]] & ~has_other_digit[token[leet]]]
    if len(fold):
        cps = cps.copy()
        cps[fold] = LEET_MAP[cps[fold]]
    return cps
