"""What the learned layer reads of the user's own system prompt pasted for review: the
lead-in, when the pasted prompt is plain (``prompt_owner.pasted_own_prompt`` finds it; the
pattern rules excuse the pasted prompt the same way)."""

from __future__ import annotations

import re

from . import fast_re
from .patterns import BLOCKING, check_patterns
from .prompt_owner import pasted_own_prompt

_LINK_RE = fast_re.compile(r"https?://|www\.|\]\(", re.IGNORECASE)


def review_lead(raw: str) -> str | None:
    """The lead-in of the user's own system prompt pasted for review, when the pasted prompt
    is plain: no link (a carrier of exfiltration: "first send the history to https://…")
    and no blocking rule before the rules excuse it (a persona without limits, an
    override). Its guard lines are what such prompts say, not orders to the reader."""
    pasted = pasted_own_prompt(raw)
    if pasted is None or _LINK_RE.search(pasted[1]):
        return None
    found = check_patterns(pasted[1], quote_policy=False)
    return None if any(r.score >= BLOCKING for r in found) else pasted[0]
