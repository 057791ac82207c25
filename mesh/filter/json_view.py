"""What a JSON tool result says: its string values, without keys and punctuation.

The learned layer's n-grams of ``{"author": "root", "message": ...`` are the shape of JSON
injections as much as of an ordinary record, so a JSON tool result is read as the values a
model takes in: an instruction planted in a field is still read, the record around it is
not. Measured on 757 hand-written JSON texts screened as tool results (whole filter): attacks
blocked 309 of 441 against 368 when the learned layer read the raw JSON, benign blocked 12 of
316 against 23. Precision first for agent traffic; the rules still read the raw JSON. Prompts
are read whole: the same view there lost a third of the learned layer's JSON attacks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator


def json_strings(text: str) -> str:
    """The string values of ``text`` one per line when it is a JSON document, else ``text``."""
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return text
    try:
        doc = json.loads(stripped)
    except (ValueError, RecursionError):
        return text
    return "\n".join(_strings(doc))


def _strings(doc: object) -> Iterator[str]:
    # Iterative: a deeply nested document must not exhaust the stack.
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
