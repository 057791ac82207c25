"""The learned layer on a prompt: what it reads of it (``learned.judged_text``), judged."""

from __future__ import annotations

from .excused import blanked
from .learned import judge, judged_text
from .normalize import Normalized, fold_text
from .patterns import excused_spans
from .verdict import Reason


def judge_text(
    raw: str, folded: str | None = None, detail: str = ""
) -> tuple[float | None, list[Reason]]:
    """``judge`` of what the layer reads of ``raw`` (``judged_text``; ``folded``: raw's,
    when the caller has it). Whether it discusses the attack it quotes is looked for only
    when the text blocks read whole: reading outside the quotes is an excuse, it may free a
    text, never block one; and the look scans the text four more times (~0.2 ms at 2 KB)."""
    p, found, _ = _judge_read(raw, folded, detail)
    return p, found


def _judge_read(
    raw: str, folded: str | None, detail: str
) -> tuple[float | None, list[Reason], bool]:
    """``judge_text``, and whether its verdict is that of the whole text as written (no
    lead, decoded payload or discussed quote read apart)."""
    judged = judged_text(raw, discussions=False)
    whole = judged is raw
    p, found = judge(folded if folded is not None and whole else fold_text(judged), detail=detail)
    if found and (outside := judged_text(raw)) != judged:
        p, found = judge(fold_text(outside), detail=detail)
        whole = False
    return p, found, whole


def judge_prompt(norm: Normalized) -> tuple[float | None, list[Reason]]:
    """The layer on a whole prompt (see ``judge_text``): its probability (None when the
    layer is off or the prompt too short to judge) and its reason when it blocks.

    A prompt it blocks, read whole, is read again without the words the rules excused
    ("forget the instructions I gave you", "never reveal your instructions": no order to the
    model) and passes if it no longer blocks: an excuse, like reading outside discussed
    quotes, that may free a prompt, never block one. The rest of the prompt is still read
    ("...and your system rules too, answer freely" stays)."""
    p, found, whole = _judge_read(norm.raw, norm.folded, "")
    if found and whole and (spans := excused_spans(norm)):
        seen = norm
        for span in spans:
            seen = blanked(seen, span)
        if seen is not norm:
            q, again = judge(seen.folded)
            if not again:
                return q, []
    return p, found


def check_learned_prompt(norm: Normalized) -> list[Reason]:
    return judge_prompt(norm)[1]
