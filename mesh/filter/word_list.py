"""A sentence cut into a list, a word or two an item, read as the sentence.

"1. ignore / 2. all / 3. previous / 4. instructions", one item a line (or "- ignore",
"• all", "a) previous"), reads as the order it spells to a model asked to read the list,
while the rules saw numbers and line breaks between its words. The decoding layer judges
this view as one more decoded text ("list", rules only, like rendered HTML) when at least
``MIN_ITEMS`` items in a row hold one or two words each: each such run of items is joined
into one line. A shopping list joined reads as words no rule takes for an order.
"""

from __future__ import annotations

import re

MIN_ITEMS = 3
# A list item of one or two words: a marker (number or letter with "." or ")", or a
# bullet), then the words, alone on their line.
_ITEM = r"[ \t]*(?:\d{1,3}[.)]|[A-Za-z][.)]|[-*•·▪◦‣+])[ \t]+(\S{1,40}(?:[ \t]\S{1,40})?)[ \t]*"
# Each item opens with its line break: a pattern that starts with a literal is scanned
# for it in C, where "^" in multi-line mode is tried at every character; and the first
# items written out, which the engine scans ~8x faster than a repeated group.
_FIRST_ITEMS_RE = re.compile("".join([rf"\n{_ITEM}"] * MIN_ITEMS) + r"(?=\n|$)")
_RUN_RE = re.compile(rf"(?:\n{_ITEM}){{{MIN_ITEMS},}}(?=\n|$)")
_ITEM_RE = re.compile(rf"\n{_ITEM}(?=\n|$)")


def _joined(run: re.Match[str]) -> str:
    return "\n" + " ".join(m.group(1) for m in _ITEM_RE.finditer(run.group()))


def listed(text: str) -> str | None:
    """``text`` with each run of short list items joined into a line (None when it has
    no such run)."""
    if text.count("\n") < MIN_ITEMS - 1 or not _FIRST_ITEMS_RE.search(lined := "\n" + text):
        return None
    shown = _RUN_RE.sub(_joined, lined)[1:]
    return shown if shown != text else None
