"""Decoding before judging: payloads hidden in base64, hex, URL, rot13 or ``\\uXXXX``
escapes (found and decoded by ``encoded``) are handed to the pattern rules and the
learned layer. The learned layer also reads the prompt with its readable runs decoded
in place (``learned.judged_text``), and rot13 text directly, having been trained on it.
"""

from __future__ import annotations

from .encoded import decoded_texts
from .exfil import check_exfil
from .learned import check_learned
from .normalize import fold_text, normalize
from .patterns import BLOCKING, check_patterns
from .verdict import Reason


def check_decoded(prompt: str, *, learned: bool = True) -> list[Reason]:
    """Blocking reasons of the rules (and, with `learned`, the learned layer) on decoded
    payloads."""
    out: list[Reason] = []
    for kind, text in decoded_texts(prompt):
        found = [r for r in check_patterns(normalize(text)) if r.score >= BLOCKING]
        found += [r for r in check_exfil(text) if r.score >= BLOCKING]
        if learned:
            found += check_learned(fold_text(text))
        for r in found:
            out.append(Reason(r.layer, f"{r.rule}@{kind}", r.score, r.span, f"decoded from {kind}"))
    return out
