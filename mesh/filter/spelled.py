"""Text spelled letter by letter in another alphabet: Braille cells and the NATO spelling
alphabet ("India Golf November Oscar Romeo Echo").

Both are what red-team kits encode an order in (garak's encoding probes), and a model
reads both; the rules saw Braille cells or call signs. The decoding layer judges the
spelled-out text as one more view ("braille", "nato"). A word break is kept where the
text has one ("/", "|" or a comma between NATO words, a blank cell in Braille); without
them the letters run together, which the rules read too ("ignoreallpreviousinstructions").
"""

from __future__ import annotations

import re

# Grade-1 Braille letters (and the capital sign, dropped).
_BRAILLE = dict(zip("⠁⠃⠉⠙⠑⠋⠛⠓⠊⠚⠅⠇⠍⠝⠕⠏⠟⠗⠎⠞⠥⠧⠺⠭⠽⠵", "abcdefghijklmnopqrstuvwxyz", strict=True))
_BRAILLE_TABLE = str.maketrans({**_BRAILLE, "⠠": "", "\u2800": " "})
# What any Braille sentence holds one of: e, a, t, o, i or n (substring tests: ~0.3 us
# each at 2 KB, where a regex of the block costs ~9 us).
_BRAILLE_COMMON = ("⠑", "⠁", "⠞", "⠕", "⠊", "⠝")
MIN_CELLS = 8

_NATO = {
    "alfa": "a", "alpha": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e",
    "foxtrot": "f", "golf": "g", "hotel": "h", "india": "i", "juliett": "j", "juliet": "j",
    "kilo": "k", "lima": "l", "mike": "m", "november": "n", "oscar": "o", "papa": "p",
    "quebec": "q", "romeo": "r", "sierra": "s", "tango": "t", "uniform": "u",
    "victor": "v", "whiskey": "w", "whisky": "w", "xray": "x", "x-ray": "x",
    "yankee": "y", "zulu": "z",
}  # fmt: skip
_WORD = "(?:" + "|".join(sorted(_NATO, key=len, reverse=True)) + ")"
MIN_CALLS = 6  # call signs in a row
_CALLS_RE = re.compile(
    rf"\b{_WORD}(?:(?:[ \t]*[/|,][ \t]*|[ \t]+){_WORD}){{{MIN_CALLS - 1},}}\b", re.IGNORECASE
)
_NATO_HINTS = ("cho", "CHO")  # Echo, ECHO, echo
_CALL_RE = re.compile(rf"{_WORD}|[/|,]", re.IGNORECASE)


def braille(text: str) -> str | None:
    """``text`` with its Braille cells read as letters (None when it has fewer than
    ``MIN_CELLS`` letter cells)."""
    if text.isascii() or not any(map(text.__contains__, _BRAILLE_COMMON)):
        return None
    if sum(map(text.count, _BRAILLE)) < MIN_CELLS:
        return None
    return text.translate(_BRAILLE_TABLE)


def nato(text: str) -> str | None:
    """``text`` with each run of ``MIN_CALLS`` or more NATO call signs spelled out (None
    when it has none). Looked for only where "echo" is written (a sentence without an e
    is rare; two substring tests, where a lower-cased copy costs ~20 us at 2 KB)."""
    if not any(map(text.__contains__, _NATO_HINTS)):
        return None
    shown = _CALLS_RE.sub(_spelled, text)
    return shown if shown != text else None


def _spelled(run: re.Match[str]) -> str:
    return "".join(
        " " if call in "/|," else _NATO[call.lower()] for call in _CALL_RE.findall(run.group())
    )
