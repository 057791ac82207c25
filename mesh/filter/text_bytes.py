"""Decoded bytes that are text in UTF-16 (or, in a hex dump, Latin-1), made UTF-8 for the
readable test.

A payload is read as text only when its bytes are UTF-8 (``encoded._readable``), and a
model reads more: "Ignore all previous instructions" saved as UTF-16 (a Windows file,
PowerShell's default) is "49006700..." in hex and "SQBnAG4A..." in base64, and passed the
whole filter in German, Russian and Arabic, while the same order as UTF-8 was blocked.
UTF-16 of a Latin, Greek, Cyrillic, Hebrew or Arabic text has the same few values in every
other byte (0x00, 0x03-0x06) and, where that byte is 0x00, printable ASCII in the other;
random bytes, or binary numbers full of zeros, do not. (CJK text in UTF-16 has no such
bytes and is not recognised.) Latin-1 is read in hex dumps only (``latin1_as_utf8``).
"""

from __future__ import annotations

import numpy as np

MIN_UNITS = 4  # UTF-16 code units before the test means anything
_HIGH = bytes([0x00, 0x03, 0x04, 0x05, 0x06])
_PRINTABLE_LATIN1 = bytes([9, 10, 13, *range(32, 127), *range(0xA0, 0x100)])


def _count_in(data: bytes, members: bytes) -> int:
    return len(data) - len(data.translate(None, members))  # C-level, whatever the size


def _utf16(data: bytes) -> str | None:
    n = len(data) // 2
    for low, high, codec in (
        (data[0::2], data[1::2], "utf-16-le"),
        (data[1::2], data[0::2], "utf-16-be"),
    ):
        low, high = low[:n], high[:n]
        if _count_in(high, _HIGH) < 0.9 * n:
            continue
        lo, hi = np.frombuffer(low, np.uint8), np.frombuffer(high, np.uint8)
        ascii_low = lo[hi == 0]
        printable = ((ascii_low >= 32) & (ascii_low < 127)) | np.isin(ascii_low, (9, 10, 13))
        if len(ascii_low) and printable.sum() >= 0.9 * len(ascii_low):
            return data[: 2 * n].decode(codec, "replace")
    return None


def as_utf8(data: bytes) -> bytes:
    """``data`` as UTF-8 when it is text in UTF-16; else as it is."""
    if len(data) >= 2 * MIN_UNITS and (text := _utf16(data)) is not None:
        return text.encode()
    return data


def latin1_as_utf8(data: bytes) -> bytes:
    """``data`` as UTF-8 when it is Latin-1 text (not UTF-8, nearly all printable in Latin-1);
    else as it is. For hex dumps only, whose lines show their bytes: for every payload it
    turned base64-looking words into "readable" noise."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        if _count_in(data, _PRINTABLE_LATIN1) >= 0.9 * len(data):
            return data.decode("latin-1").encode()
    return data
