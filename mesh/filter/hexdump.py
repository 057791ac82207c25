"""Hex dumps: the output of ``xxd``, ``hexdump -C`` and ``od -t x1``.

"00000000: 8950 4e47 0d0a 1a0a 0000 000d 4948 4452  .PNG........IHDR": a developer pastes
the first bytes of a file to ask what is wrong with it. Read raw, the learned layer took the
hex groups, folded as leetspeak ("0d0a" as "odoa"), for words and blocked such questions
in four languages; and an order written as a dump was read by nobody, though a model reads
it. A block of dump lines is one encoded run (``encoded``): the bytes of its hex columns
are decoded like any hex, an order is judged as text, a file's bytes are a blank. A line
counts only when its character column shows its bytes (a dot for each unprintable one), as
the tools print it: text written there instead would be read by a model, and must not
vanish with the bytes; and a table of numbers has no such column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .text_bytes import latin1_as_utf8

MIN_BYTES = 8
# One dump line: an offset (4-8 hex digits, "0x" or ":" optional), then 1 to 32 groups of 2
# or 4 hex digits one or two blanks apart, then, after two blanks or a bar, the characters.
_LINE_RE = re.compile(
    r"^[ \t]*(?:0x)?[0-9A-Fa-f]{4,8}:?[ \t]+"
    r"((?:[0-9A-Fa-f]{2}|[0-9A-Fa-f]{4})(?:[ \t]{1,2}(?:[0-9A-Fa-f]{2}|[0-9A-Fa-f]{4})){0,31})"
    r"(?:([ \t]{2,}|[ \t]*[|>])(.*))?$",
    re.MULTILINE,
)
_SHOWN = bytes(c if 32 <= c < 127 else ord(".") for c in range(256))
# A cheap look before the line-by-line parse, on the text's byte shape (``encoded``: hex
# digit h, blank or colon s): three groups of four (xxd) or four of two (hexdump -C, od)
_PROBES = (b"hhhhshhhhshhhh", b"hhshhshhshh")


def dump_runs(head: str, shape: bytes) -> Iterator[str]:
    """Each block of consecutive dump lines in ``head``, as written; ``shape``: its byte
    shape, which the caller has made for the spaced hex too."""
    if not any(probe in shape for probe in _PROBES):
        return
    start = end = -1
    for m in _LINE_RE.finditer(head):
        if _line_bytes(m) is None:
            continue
        if m.start() == end + 1 and start >= 0:  # the next line: the block goes on
            end = m.end()
            continue
        if start >= 0:
            yield head[start:end]
        start, end = m.start(), m.end()
    if start >= 0:
        yield head[start:end]


def dump_bytes(run: str) -> bytes | None:
    """The bytes of a block's hex columns, in the order written (None: too few)."""
    data = b"".join(b for m in _LINE_RE.finditer(run) if (b := _line_bytes(m)) is not None)
    # a dump of Latin-1 text is read as text, not blanked with the words its column shows
    return latin1_as_utf8(data) if len(data) >= MIN_BYTES else None


def _line_bytes(m: re.Match[str]) -> bytes | None:
    """A dump line's bytes, or None when its character column is not theirs."""
    data = bytes.fromhex(m.group(1).replace(" ", "").replace("\t", ""))
    column = ((m.group(2) or "") + (m.group(3) or "")).strip()
    if column[:1] + column[-1:] in ("||", "><"):  # "|.PNG...|" (hexdump -C), ">.PNG<" (od)
        column = column[1:-1]
    # blanks at its ends are lost to the line's own (a line of bytes that start with 0x20)
    shown = data.translate(_SHOWN).decode("ascii").strip()
    return data if column.strip() == shown and (shown or m.group(2)) else None
