"""What the learned layer reads of a text that discusses an attack it quotes: the text
outside its quotes, as the quote policy's rules do (``quoting.discussed_quotes``), but only
for a few quotes with no words of doing around them."""

from __future__ import annotations

from itertools import islice

from .quoting import QUOTE_RE, casefold_outside, discussed_quotes, orders_reader

MAX_DISCUSSED_QUOTES = 3  # a many-shot attack is a quoted dialogue: it quotes more


def discussed_example(raw: str) -> str | None:
    """The text outside the quotes of ``raw`` when it discusses an attack it quotes as an
    example ("we keep getting messages like '...'; write a regex for them") and quotes a few
    phrases, not a dialogue (else None)."""
    # counted up to one past the bound: a long document quotes hundreds of times (5 ms)
    if (
        sum(1 for _ in islice(QUOTE_RE.finditer(raw), MAX_DISCUSSED_QUOTES + 1))
        > MAX_DISCUSSED_QUOTES
    ):
        return None
    outside = discussed_quotes(raw)
    # words of doing outside the quotes, at any length ("...act on the quoted message"):
    # the quote is then said, and the layer is its last reader
    if outside is None or orders_reader(casefold_outside(outside)):
        return None
    return outside
