"""Other ways a reader reads a prompt as written: its rendered HTML (``rendered``), its
upside-down lines turned back (``flipped``), its lines written backwards reversed
(``backwards``), its one-word list items joined
(``word_list``), its Braille cells and NATO call signs spelled out (``spelled``). The
decoding layer judges each as one more decoded text, named by kind; the list by the rules
only (``decode.RULES_ONLY``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from .backwards import backwards
from .flipped import flipped
from .rendered import KIND as RENDERED
from .rendered import rendered
from .spelled import braille, nato
from .word_list import listed

LISTED = "list"
_VIEWS: tuple[tuple[str, Callable[[str], str | None]], ...] = (
    (RENDERED, rendered),
    ("flipped", flipped),
    ("backwards", backwards),
    (LISTED, listed),
    ("braille", braille),
    ("nato", nato),
)


def plain_views(text: str) -> Iterator[tuple[str, str]]:
    """(kind, view) for each view that reads ``text`` differently."""
    for kind, view in _VIEWS:
        if (shown := view(text)) is not None:
            yield kind, shown
