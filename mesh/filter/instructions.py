"""The learned layer reads a chat's instructions apart from its conversation.

The router joins a chat's messages into one prompt, and marks where its system and
developer messages lie (``CheckRequest.instructions``). The learned layer was trained on
messages one at a time; read joined, a developer's format rule and the user's first line
make one window that looks like a fake turn ("Answer with JSON only.\\nRate: great!"
scored like "SYSTEM: ...\\nUser: ..."). So it judges each instruction message alone and
the rest of the prompt (the conversation, its messages still joined) as one text. Every
other layer reads the whole prompt as before: an attack in a system message is judged as
surely as one in a user message, only not glued to its neighbour. The behaviour history's
rejoin reads a request from where the conversation starts (``conversation_head``): read
from the top, every request of a chat app began with the same system prompt, and an
attack split across its user messages was never rejoined.
"""

from __future__ import annotations

from collections.abc import Sequence

from .learned_prompt import judge_text
from .normalize import Normalized
from .verdict import Reason

Span = tuple[int, int]  # code points [start, end) of the prompt
IN_INSTRUCTIONS = "in a system or developer message"
# Each judged alone up to this many (a chat has one or a few); more are judged as one text,
# so a request's cost does not grow with its number of messages (each judge has ~0.2 ms of
# fixed cost: 4,096 one-line system messages took 0.8 s judged one by one).
MAX_APART = 16


def span_problem(spans: Sequence[Span], length: int) -> str | None:
    """Why ``spans`` cannot mark instructions in a prompt of ``length`` code points
    (None: they can): each inside the prompt, sorted, not overlapping."""
    at = 0
    for start, end in spans:
        if not at <= start <= end <= length:
            return (
                f"instruction span [{start}, {end}) is not inside the prompt's {length} "
                "code points, after the previous span"
            )
        at = end
    return None


def split_instructions(prompt: str, spans: Sequence[Span]) -> tuple[list[str], str]:
    """The instruction messages, and the conversation: the rest, joined by newlines."""
    instructions, rest, at = [], [], 0
    for start, end in spans:
        instructions.append(prompt[start:end])
        rest.append(prompt[at:start])
        at = end
    rest.append(prompt[at:])
    conversation = "\n".join(p.strip("\n") for p in rest if p.strip("\n"))
    return instructions, conversation


def conversation_head(prompt: str, spans: Sequence[Span], chars: int = 256) -> str | None:
    """The first ``chars`` of the conversation, for the behaviour history's rejoin (a split
    attack continues in the sender's words, not in the system prompt that every request
    repeats); None when the prompt starts with the conversation anyway."""
    if not spans or spans[0][0] > 0:
        return None
    return split_instructions(prompt[: spans[-1][1] + chars + len(spans)], spans)[1][:chars]


def judge_apart(norm: Normalized, spans: Sequence[Span]) -> tuple[float | None, list[Reason]]:
    """The learned layer on each instruction message and on the conversation: the highest
    probability (None when none was long enough to judge) and the reason of the text that
    blocks with it."""
    instructions, conversation = split_instructions(norm.raw, spans)
    if len(instructions) > MAX_APART:  # a hostile chat of 4,096 system messages: 2 judges
        instructions = ["\n".join(instructions)]
    best: tuple[float | None, list[Reason]] = (None, [])
    for text, detail in [(conversation, "")] + [(t, IN_INSTRUCTIONS) for t in instructions]:
        p, reasons = judge_text(text, detail=detail)
        if p is not None and (best[0] is None or p > best[0]):
            best = (p, reasons)
    return best
