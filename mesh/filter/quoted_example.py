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
    # (the quote policy's reading first: remembered from the rules, and at once None past
    # its length bound; then the quotes, counted up to one past this bound)
    outside = discussed_quotes(raw)
    if outside is None or _more_quotes_than(raw, MAX_DISCUSSED_QUOTES):
        return None
    # words of doing outside the quotes, at any length ("...act on the quoted message"):
    # the quote is then said, and the layer is its last reader
    return None if orders_reader(casefold_outside(outside)) else outside


def _more_quotes_than(raw: str, bound: int) -> bool:
    return sum(1 for _ in islice(QUOTE_RE.finditer(raw), bound + 1)) > bound
