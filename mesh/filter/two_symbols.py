"""Texts spelled in two symbols: Morse code and 8-bit binary.

".. --. -. --- .-. . / .- .-.. .-.." and "01001001 01100111 ..." read, once decoded, as
what they spell, to a model as to a radio amateur. Read raw, they were only noise to the
rules, and the learned layer blocked any of them, harmless ones too ("What does this Morse
code say? .... . .-.. .-.. ---"). The encoded-run finder (``encoded``) hands their runs to
the decoding layer and to the learned layer's in-place view like base64 runs.
"""

from __future__ import annotations

import re

MIN_SYMBOLS = 6  # Morse letters, or binary bytes, in a run
# Looked for in the head only: raw, the learned layer reads either as an attack anyway;
# decoding them is what lets a harmless one pass.
SCAN = 8192

_MORSE = {
    ".-": "a", "-...": "b", "-.-.": "c", "-..": "d", ".": "e", "..-.": "f", "--.": "g",
    "....": "h", "..": "i", ".---": "j", "-.-": "k", ".-..": "l", "--": "m", "-.": "n",
    "---": "o", ".--.": "p", "--.-": "q", ".-.": "r", "...": "s", "-": "t", "..-": "u",
    "...-": "v", ".--": "w", "-..-": "x", "-.--": "y", "--..": "z", "-----": "0",
    ".----": "1", "..---": "2", "...--": "3", "....-": "4", ".....": "5", "-....": "6",
    "--...": "7", "---..": "8", "----.": "9", ".-.-.-": ".", "--..--": ",", "..--..": "?",
    "-.-.--": "!", "-..-.": "/", "---...": ":", ".----.": "'", "-....-": "-",
}  # fmt: skip
# Letters of dots and dashes ("·", "−" and "_" too, once a dot touches a dash), apart by
# blanks; words apart by "/", "|" or three blanks.
_SIGN = r"[.\-·−_]"
_MORSE_RE = re.compile(
    rf"(?<![\w.\-·−])(?:{_SIGN}{{1,6}}(?:[ \t]*[/|][ \t]*|[ \t]+)){{{MIN_SYMBOLS - 1},}}"
    rf"{_SIGN}{{1,6}}(?![\w.\-·−])"
)
_MORSE_SIGNS = str.maketrans("·−_", ".--")
_WORD_BREAK_RE = re.compile(r"[ \t]*[/|][ \t]*|[ \t]{3,}")
_BINARY_RE = re.compile(rf"(?<![01])(?:[01]{{8}}[ \t,]*){{{MIN_SYMBOLS},}}(?![01])")


def morse_runs(prompt: str, data: bytes) -> list[str]:
    """Runs of Morse code in the head, with dots and dashes both (a Markdown table's
    "|---|---|" rule is no message); looked for only where a dot touches a dash in
    ``data``, the prompt's UTF-8 (a bytes search: most texts have none)."""
    data = data[: 4 * SCAN]  # the UTF-8 of the first SCAN characters, at most
    if b".-" not in data and b"-." not in data:
        return []
    return [run for run in _MORSE_RE.findall(prompt, 0, SCAN) if _dots_and_dashes(run)]


def _dots_and_dashes(run: str) -> bool:
    return any(map(run.__contains__, ".·")) and any(map(run.__contains__, "-−_"))


def binary_runs(prompt: str, data: bytes) -> list[str]:
    """Runs of bytes written in binary in the head, apart by blanks or commas (a letter's
    byte starts with "01": a bytes search in ``data`` rules most texts out)."""
    data = data[: 4 * SCAN]
    return _BINARY_RE.findall(prompt, 0, SCAN) if b" 01" in data or b",01" in data else []


def morse_text(run: str) -> str | None:
    """The letters a run spells (None when a letter is no Morse letter)."""
    words = []
    for word in _WORD_BREAK_RE.split(run.translate(_MORSE_SIGNS).strip()):
        letters = [_MORSE.get(code) for code in word.split()]
        if None in letters:
            return None
        words.append("".join(letters))  # type: ignore[arg-type]
    return " ".join(words)


def binary_bytes(run: str) -> bytes:
    return bytes(int(group, 2) for group in re.findall(r"[01]{8}", run))
