"""The learned layer on a prompt: what it reads of it (``learned.judged_text``), judged."""

from __future__ import annotations

from .learned import judge, judged_text
from .normalize import Normalized, fold_text
from .verdict import Reason


def judge_text(
    raw: str, folded: str | None = None, detail: str = ""
) -> tuple[float | None, list[Reason]]:
    """``judge`` of what the layer reads of ``raw`` (``judged_text``; ``folded``: raw's,
    when the caller has it). Whether it discusses the attack it quotes is looked for only
    when the text blocks read whole: reading outside the quotes is an excuse, it may free a
    text, never block one; and the look scans the text four more times (~0.2 ms at 2 KB)."""
    judged = judged_text(raw, discussions=False)
    found = judge(
        folded if folded is not None and judged is raw else fold_text(judged), detail=detail
    )
    if found[1] and (outside := judged_text(raw)) != judged:
        return judge(fold_text(outside), detail=detail)
    return found


def judge_prompt(norm: Normalized) -> tuple[float | None, list[Reason]]:
    """The layer on a whole prompt (see ``judge_text``): its probability (None when the
    layer is off or the prompt too short to judge) and its reason when it blocks."""
    return judge_text(norm.raw, norm.folded)


def check_learned_prompt(norm: Normalized) -> list[Reason]:
    return judge_prompt(norm)[1]
