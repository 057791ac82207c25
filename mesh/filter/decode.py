"""Decoding before judging: payloads hidden in base64, hex, URL, rot13 or ``\\uXXXX``
escapes (found and decoded by ``encoded``) are handed to the pattern rules and the
learned layer. The learned layer also reads the prompt with its readable runs decoded
in place (``learned.judged_text``), and rot13 text directly, having been trained on it.
A page's rendered text (``rendered``: tags out, references decoded) goes to the rules
only: the layer reads words through markup already, and a second reading of the same
words, a few tags fewer, only gave it a second chance at a false positive (a Markdown
table with one ``<small>``: p 0.71 rendered, under threshold as written).
"""

from __future__ import annotations

from .encoded import decoded_texts
from .exfil import check_exfil
from .learned import check_learned
from .normalize import fold_text, normalize
from .patterns import BLOCKING, check_patterns
from .verdict import Reason
from .views import LISTED, RENDERED

RULES_ONLY = frozenset({RENDERED, LISTED})  # views the learned layer does not judge again


def check_decoded(prompt: str, *, learned: bool = True) -> list[Reason]:
    """Blocking reasons of the rules (and, with `learned`, the learned layer) on decoded
    payloads."""
    out: list[Reason] = []
    for kind, text in decoded_texts(prompt):
        found = [r for r in check_patterns(normalize(text)) if r.score >= BLOCKING]
        found += [r for r in check_exfil(text) if r.score >= BLOCKING]
        if learned and kind not in RULES_ONLY:
            found += check_learned(fold_text(text))
        for r in found:
            out.append(Reason(r.layer, f"{r.rule}@{kind}", r.score, r.span, f"decoded from {kind}"))
    return out
