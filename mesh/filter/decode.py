"""Decoding before judging: payloads hidden in base64, hex, URL or rot13 encoding.

A bounded scan finds encoded-looking runs (linear regexes), decodes at most
``MAX_CANDIDATES`` of them, at most ``MAX_ENCODED`` characters each, keeps only
results that are readable text (valid UTF-8, mostly printable, some letters),
decodes once more when the result is itself encoded (base64 of hex...), and
hands the decoded text to the pattern rules and the learned layer. Rot13 has
no alphabet of its own, so it is tried only when the prompt names it (rot13,
rot-13, caesar): the learned layer also sees rot13 text directly, having been
trained on it.

Binary payloads (images, JWT signatures, compressed data) fail the
readable-text test and cost one failed decode.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import urllib.parse
from collections.abc import Callable, Iterator

from .learned import check_learned
from .normalize import fold_text, normalize
from .patterns import BLOCKING, check_patterns
from .verdict import Reason

MAX_CANDIDATES = 8  # encoded runs decoded per prompt
MAX_ENCODED = 16_384  # characters of one run that are decoded
MAX_DEPTH = 2  # base64 of hex of ... : two layers
MIN_TEXT = 8  # decoded text shorter than this says nothing

# Every pattern starts only where a run starts (a look-behind for "not the run's
# alphabet"), so a failed attempt costs one pass over its run: linear in the prompt.
_B64_RE = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RE = re.compile(
    r"(?<![0-9A-Fa-fx\\])(?:\\x|0x)?[0-9A-Fa-f]{2}(?:[\s:,]?(?:\\x|0x)?[0-9A-Fa-f]{2}){7,}"
)
_URL_RE = re.compile(r"(?:%[0-9A-Fa-f]{2}[^\s%]{0,16}){4,}")
_ROT13_HINT_RE = re.compile(r"\brot[\s_-]?13\b|\bcaesar\b|\bcésar\b|\bcäsar\b", re.IGNORECASE)
_HEX_JUNK_RE = re.compile(r"\\x|0x|[\s:,]")


def _readable(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < MIN_TEXT:
        return None
    printable = sum(c.isprintable() or c in "\n\t\r" for c in text)
    letters = sum(c.isalpha() for c in text)
    if printable < 0.95 * len(text) or letters < 0.4 * len(text.replace(" ", "")):
        return None
    return text


def _b64(run: str) -> str | None:
    run = run[:MAX_ENCODED].rstrip("=")
    if run.isalpha() and (run.islower() or run.isupper()):
        return None  # a long word or identifier, not base64
    alt = "-_" if ("-" in run or "_" in run) else None
    try:
        data = base64.b64decode(run + "=" * (-len(run) % 4), altchars=alt)
    except (binascii.Error, ValueError):
        return None
    return _readable(data)


def _hex(run: str) -> str | None:
    digits = _HEX_JUNK_RE.sub("", run[:MAX_ENCODED])
    if len(digits) % 2:
        digits = digits[:-1]
    try:
        return _readable(bytes.fromhex(digits))
    except ValueError:
        return None


def _url(run: str) -> str | None:
    text = urllib.parse.unquote(run[:MAX_ENCODED], errors="strict")
    return text if len(text) >= MIN_TEXT and text != run else None


DECODERS: tuple[tuple[str, re.Pattern[str], Callable[[str], str | None]], ...] = (
    ("hex", _HEX_RE, _hex),
    ("base64", _B64_RE, _b64),
    ("url", _URL_RE, _url),
)


def decoded_texts(prompt: str, depth: int = 1) -> Iterator[tuple[str, str]]:
    """(encoding, decoded text) for each readable encoded run of ``prompt``."""
    found = 0
    for kind, pattern, decode in DECODERS:
        for m in pattern.finditer(prompt):
            if found >= MAX_CANDIDATES:
                return
            try:
                text = decode(m.group())
            except UnicodeDecodeError:
                text = None
            if text is None:
                continue
            found += 1
            yield kind, text
            if depth < MAX_DEPTH:
                for inner_kind, inner in decoded_texts(text, depth + 1):
                    yield f"{kind}+{inner_kind}", inner
    if depth == 1 and _ROT13_HINT_RE.search(prompt[:MAX_ENCODED]):
        yield "rot13", codecs.decode(prompt[:MAX_ENCODED], "rot13")


def check_decoded(prompt: str) -> list[Reason]:
    """Blocking reasons of the rules and the learned layer on decoded payloads."""
    out: list[Reason] = []
    for kind, text in decoded_texts(prompt):
        found = [r for r in check_patterns(normalize(text)) if r.score >= BLOCKING]
        found += check_learned(fold_text(text))
        for r in found:
            out.append(Reason(r.layer, f"{r.rule}@{kind}", r.score, r.span, f"decoded from {kind}"))
    return out
