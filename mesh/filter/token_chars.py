"""Word tokens of any text in a few numpy passes: what ``re.findall(r"[\\w@$€|-]+")`` finds.

The regex costs ~2.4 ms on 100 KB of mixed-script text (one match object per token); a
lookup table of the token characters turns every other character into a space, and one
C-level ``str.split`` cuts the rest (~1 ms). Python's ``\\w`` is ``str.isalnum()`` or "_",
so the table is exact; it covers the Basic Multilingual Plane (64 KB), and the few
characters beyond it (emoji, rare CJK) are looked up one by one.
"""

from __future__ import annotations

import numpy as np

_EXTRA = "_@$€|-"
_BMP = 0x10000
_SPACE = np.uint32(32)


def _is_token_char(c: str) -> bool:
    return c.isalnum() or c in _EXTRA


_TABLE = np.fromiter((_is_token_char(chr(cp)) for cp in range(_BMP)), dtype=bool, count=_BMP)


def tokens(text: str) -> list[str]:
    """Maximal runs of token characters (``\\w``, "@", "$", "€", "|", "-"), in order."""
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    astral = cps >= _BMP
    keep = _TABLE[np.where(astral, 0, cps)]  # code point 0 is no token character
    if astral.any():
        for cp in np.unique(cps[astral]).tolist():
            if _is_token_char(chr(cp)):
                keep[cps == cp] = True
    kept = np.where(keep, cps, _SPACE)
    return kept.tobytes().decode("utf-32-le", "surrogatepass").split()
