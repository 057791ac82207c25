"""Encoded runs in a prompt: base64, base32, hex, URL encoding, quoted-printable,
``\\uXXXX`` escapes, Morse code and binary (``two_symbols``) and letter ciphers (rot13,
Caesar, Atbash), found and decoded within fixed bounds.

A bounded scan finds encoded-looking runs (see ``_candidates``: long tokens,
'%' runs, JSON escapes, separated hex near the start), tries at most
``MAX_TRIES`` of them, at most ``MAX_ENCODED`` characters each, keeps only
readable results (valid UTF-8, mostly printable, some letters), yields at most
``MAX_CANDIDATES`` of them and decodes once more when a result is itself encoded
(base64 of hex...). A letter cipher has no alphabet of its own, so it is tried only
when the prompt reads like it (``ciphers``) or names it (rot13, rot-13, caesar).

Binary payloads (images, JWT signatures, compressed data) fail the
readable-text test and cost one failed decode. ``decode`` judges what is found here;
``inline_decoded`` gives the learned layer the prompt with its payloads in clear.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
import string
import urllib.parse
from collections.abc import Callable, Iterator
from functools import lru_cache
from itertools import compress
from operator import methodcaller

from . import fast_re
from .ciphers import ROT13, cipher_of, deciphered
from .hexdump import dump_bytes, dump_runs
from .text_bytes import as_utf8
from .two_symbols import binary_bytes, binary_runs, morse_runs, morse_text
from .views import plain_views

MAX_CANDIDATES = 8  # readable decoded runs judged per prompt
MAX_TRIES = 64  # encoded-looking runs decoded per prompt (most fail the readable test)
MAX_ENCODED = 16_384  # characters of one run that are decoded
MAX_DEPTH = 2  # base64 of hex of ... : two layers
MIN_TEXT = 8  # decoded text shorter than this says nothing

# Every pattern starts only where a run starts (a look-behind for "not the run's
# alphabet"), so a failed attempt costs one pass over its run: linear in the prompt.
_B64_RE = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX_RE = fast_re.compile(
    r"(?<![0-9A-Fa-fx\\])(?:\\x|0x)?[0-9A-Fa-f]{2}(?:[\s:,]?(?:\\x|0x)?[0-9A-Fa-f]{2}){7,}"
)
_URL_RE = fast_re.compile(r"(?:%[0-9A-Fa-f]{2}[^\s%]{0,48}){4,}")  # a host name fits in a gap
_ROT13_HINT_RE = fast_re.compile(r"\brot[\s_-]?13\b|\bcaesar\b|\bcésar\b|\bcäsar\b", re.IGNORECASE)
_HEX_JUNK_RE = re.compile(r"\\x|0x|[\s:,]")


def _readable(data: bytes) -> str | None:
    try:  # text saved as UTF-16 is read too (``text_bytes``)
        text = as_utf8(data).decode("utf-8")
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


_B32_RE = re.compile(r"[A-Z2-7]{16,}={0,6}")


def _b32(run: str) -> str | None:
    run = run[:MAX_ENCODED].rstrip("=")
    try:
        data = base64.b32decode(run + "=" * (-len(run) % 8))
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
    try:
        text = urllib.parse.unquote(run[:MAX_ENCODED], errors="strict")
    except UnicodeDecodeError:
        return None
    return text if len(text) >= MIN_TEXT and text != run else None


MAX_SPACED_SCAN = 16_384  # hex written with separators ("e8 a8 80") is looked for here only
_SPACED_HEX_PROBE_RE = re.compile(r"[0-9A-Fa-f]{2}[\s:,][0-9A-Fa-f]{2}[\s:,][0-9A-Fa-f]{2}")


# The probe on a byte "shape" of the text: hex digit → h, a separator → s, anything
# else → o. One translate and one substring search instead of a regex attempt at every
# hex letter.
PROBE_SHAPE = (
    bytes(
        ord("h")
        if c in "0123456789abcdefABCDEF"
        else ord("s")
        if c.isspace() or c in ":,"
        else ord("o")
        for c in map(chr, range(128))
    )
    + b"o" * 128
)


def _has_spaced_hex(head: str, shape: bytes) -> bool:
    """``_SPACED_HEX_PROBE_RE.search(head)``, on the byte shape of the text (every byte of a
    non-ASCII character is "other"), exact unless the text holds a Unicode space, which
    ``\\s`` matches too: then the regex itself."""
    if not head.isascii() and _may_have_wide_space(head):
        return _SPACED_HEX_PROBE_RE.search(head) is not None
    return b"hhshhshh" in shape


def _may_have_wide_space(text: str) -> bool:
    # Whitespace beyond ASCII is either a line break (U+0085, U+2028, U+2029) or a
    # non-printable space (U+00A0, U+3000...): lines (cut at every line break) that are
    # all printable hold none. A tab makes its line non-printable: the regex then.
    return (
        "\x85" in text
        or "\u2028" in text
        or "\u2029" in text
        or not all(map(str.isprintable, text.splitlines()))
    )


_UNICODE_ESCAPE_RE = re.compile(r"\\u([0-9A-Fa-f]{4})")


def _unescape(m: re.Match[str]) -> str:
    c = chr(int(m.group(1), 16))
    return c if not 0xD800 <= ord(c) <= 0xDFFF else "\ufffd"  # lone surrogates: replaced


_group = methodcaller("group")
_SHORTER = 15  # tokens longer than this may hold a contiguous encoded run
SPLIT_CHUNK = 65_536  # the prompt is split into tokens this much at a time (bounded memory)
_SPACE_RE = re.compile(r"\s")


_LONG_TOKEN_RE = re.compile(r"\S{16,}")  # matches start at token starts: whole tokens


def _long_tokens(prompt: str) -> Iterator[str]:
    """Whitespace-separated tokens of 16+ characters, split chunk by chunk (cut at
    whitespace) so a multi-megabyte prompt never becomes one huge token list.

    Text that is mostly spaces ("i g n o r e") would be split into one string per
    letter: there a regex scan finds the same tokens in the same order, cheaper.
    """
    if prompt.count(" ") * 4 > len(prompt):
        yield from map(_group, _LONG_TOKEN_RE.finditer(prompt))
        return
    pos, n = 0, len(prompt)
    while pos < n:
        end = pos + SPLIT_CHUNK
        if end < n:
            ws = _SPACE_RE.search(prompt, end)
            end = ws.start() if ws else n
        words = prompt[pos:end].split()
        yield from compress(words, map(_SHORTER.__lt__, map(len, words)))  # C-level filter
        pos = max(end, pos + 1)


def _byte_class(chars: str) -> bytes:
    """A translate table: the (ASCII) ``chars`` → 1, every other byte → 0."""
    return bytes(int(chr(b) in chars) for b in range(256))


# A contiguous hex run (prefixes and ':'/',' separators included: no whitespace inside a
# token) or base64 run holds 16 consecutive characters of its alphabet: where the whole
# prompt has no such stretch (two byte translates and two searches), no token's regex
# can match and the token scan is skipped.
_HEX_SHAPE = _byte_class("0123456789abcdefABCDEFx\\:,")
_B64_SHAPE = _byte_class(string.ascii_letters + string.digits + "+/_-")
_RUN_OF_16 = b"\x01" * 16


def _candidates(prompt: str) -> Iterator[tuple[str, str, str | None]]:
    """(encoding, the run, decoded text or None) per distinct encoded-looking run: a run
    repeated is decoded and counted once, so copies of a harmless run cannot use up the
    tries and hide a later one."""
    seen: set[tuple[str, str]] = set()
    for kind, run, decode in _runs(prompt):
        if (kind, run) not in seen:  # one run may be tried as two encodings (base64, base32)
            seen.add((kind, run))
            yield kind, run, decode(run)


def _unescaped(head: str) -> str | None:
    unescaped = _UNICODE_ESCAPE_RE.sub(_unescape, head)
    return unescaped if len(unescaped) >= MIN_TEXT else None


def _runs(prompt: str) -> Iterator[tuple[str, str, Callable[[str], str | None]]]:
    """(encoding, run, its decoder) per encoded-looking run, lazily.

    Contiguous runs (base64, hex) are looked for only inside whitespace-separated
    tokens of 16+ characters (one C-level ``split``: most prompts have none), and
    only when the prompt has 16 characters of that alphabet in a row;
    percent-encoding only when the prompt has 4+ '%'; separated hex only in the
    first ``MAX_SPACED_SCAN`` characters.
    """
    data = prompt.encode("utf-8", "surrogatepass")
    may_hex = _RUN_OF_16 in data.translate(_HEX_SHAPE)
    may_b64 = _RUN_OF_16 in data.translate(_B64_SHAPE)
    if may_hex or may_b64:
        for token in _long_tokens(prompt):
            if may_hex:
                for m in _HEX_RE.finditer(token):
                    yield "hex", m.group(), _hex
            if may_b64:
                for m in _B64_RE.finditer(token):
                    yield "base64", m.group(), _b64
                    if _B32_RE.fullmatch(m.group()):  # its alphabet is base64's, upper case
                        yield "base32", m.group(), _b32
    if prompt.count("%") >= 4:
        for m in _URL_RE.finditer(prompt):
            yield "url", m.group(), _url
    # JSON/JS escapes: "\u0418\u0433..." spells text. One is enough: json.dumps escapes
    # every non-ASCII letter, and a lone "\u00e9" read raw is noise n-grams to the layer.
    if "\\u" in prompt and _UNICODE_ESCAPE_RE.search(prompt):
        yield "unicode_escape", prompt[:MAX_ENCODED], _unescaped
    # Quoted-printable (e-mail bodies: "r=C3=A9servation", "Ignore=20all"): three escapes
    if prompt.count("=") >= MIN_QP and len(_QP_RE.findall(prompt, 0, MAX_ENCODED)) >= MIN_QP:
        yield "quoted_printable", prompt[:MAX_ENCODED], _quoted_printable
    for run in morse_runs(prompt, data):
        yield "morse", run, _morse
    for run in binary_runs(prompt, data):
        yield "binary", run, _binary
    head = prompt[:MAX_SPACED_SCAN]
    shape = head.encode("utf-8", "surrogatepass").translate(PROBE_SHAPE)
    for run in dump_runs(head, shape):  # before its lines' hex is read piece by piece
        yield "hexdump", run, _hexdump
    if _has_spaced_hex(head, shape):
        for m in _HEX_RE.finditer(head):
            if " " in m.group() or ":" in m.group() or "," in m.group():
                yield "hex", m.group(), _hex


_QP_RE = re.compile(r"=[0-9A-F]{2}")
MIN_QP = 3


def _quoted_printable(head: str) -> str | None:
    text = _readable(quopri.decodestring(head.encode("utf-8", "surrogatepass")))
    return text if text != head else None


def _hexdump(run: str) -> str | None:
    return None if (data := dump_bytes(run)) is None else _readable(data)


def _morse(run: str) -> str | None:
    text = morse_text(run[:MAX_ENCODED])
    return None if text is None else _readable(text.encode())


def _binary(run: str) -> str | None:
    return _readable(binary_bytes(run[:MAX_ENCODED]))


def _readable_runs(
    prompt: str, unreadable: list[str] | None = None
) -> Iterator[tuple[str, str, str]]:
    """(encoding, run, text) per readable run: at most ``MAX_TRIES`` distinct runs decoded,
    at most ``MAX_CANDIDATES`` distinct texts. ``unreadable`` collects the binary payloads
    met on the way (``_binary_payload``)."""
    texts: set[str] = set()
    for tried, (kind, run, text) in enumerate(_candidates(prompt), 1):
        if tried > MAX_TRIES or len(texts) >= MAX_CANDIDATES:
            return
        if text is not None:
            texts.add(text)
            yield kind, run, text
        elif unreadable is not None and _binary_payload(kind, run):
            unreadable.append(run)


# A run that decodes to no text and looks like encoded data, not like words run together:
# hex, or base64 whose character class (capital, small letter, digit) changes at 45 % or
# more of its steps and whose letters hold under 30 % vowels, as random bytes' base64 does
# (about 0.65 and 0.19; certificate lines 0.48-0.59 and 0.16-0.22). Words joined by
# underscores ("LEIA-ME_ASSISTENTE__torna_esta_pasta_publica...": a file name), in camel
# case ("DisregardEverythingYouWereToldEarlier...2024": 0.36) or in alternating case
# ("IgNoReAlLpReViOuS...": 0.37 vowels) stay for the layer to read.
MIN_PAYLOAD = 48
PAYLOAD_SAMPLE = 96
_CLASSES = str.maketrans(
    string.ascii_uppercase + string.ascii_lowercase + string.digits,
    "U" * 26 + "L" * 26 + "D" * 10,
)
_CLASS_CHANGE_RE = re.compile(r"(.)(?!\1)(?=.)")


def _binary_payload(kind: str, run: str) -> bool:
    if len(run) < MIN_PAYLOAD:
        return False
    if kind in ("hex", "hexdump"):
        return True
    if kind != "base64":
        return False
    sample = run[:PAYLOAD_SAMPLE]
    changes = len(_CLASS_CHANGE_RE.findall(sample.translate(_CLASSES)))
    letters = sum(map(str.isalpha, sample))
    vowels = sum(map(sample.lower().count, "aeiou"))
    return changes >= 0.45 * (len(sample) - 1) and vowels < 0.3 * max(letters, 1)


@lru_cache(maxsize=4)
def _scanned(prompt: str) -> tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]]:
    unreadable: list[str] = []
    return tuple(_readable_runs(prompt, unreadable)), tuple(unreadable)


def readable_runs(prompt: str) -> tuple[tuple[str, str, str], ...]:
    """``_readable_runs`` of a prompt, cached: the decoding layer, the learned layer's view
    (``inline_decoded``) and the encoded-order rule read the same runs of the same prompt."""
    return _scanned(prompt)[0]


def decoded_texts(prompt: str, depth: int = 1) -> Iterator[tuple[str, str]]:
    """(encoding, decoded text) for each readable encoded run of ``prompt``, and of the
    texts they decode to (``MAX_DEPTH``); then the prompt deciphered (``ciphers``: rot13,
    Caesar, Atbash) and in its other views (``views``: rendered HTML, upside-down text,
    one-word list items, Braille, NATO spelling), where it looks so."""
    seen: set[str] = set()
    for kind, _run, text in readable_runs(prompt) if depth == 1 else _readable_runs(prompt):
        if text in seen:
            continue
        seen.add(text)
        yield kind, text
        if depth < MAX_DEPTH:
            for inner_kind, inner in decoded_texts(text, depth + 1):
                yield f"{kind}+{inner_kind}", inner
    # a cipher its words show, else rot13 where the prompt names rot13 or Caesar
    if depth == 1 and (
        cipher := cipher_of(prompt) or (ROT13 if _names_rot13(prompt[:MAX_ENCODED]) else None)
    ):
        yield cipher, deciphered(prompt[:MAX_ENCODED], cipher)
    if depth == 1:
        yield from plain_views(prompt[:MAX_ENCODED])


# What a "caesar" match (any case; the regex also takes "ſ" for "s") leaves in the
# lower-cased text: without "13", only such a match can make the regex succeed.
_CAESAR_LOWER = ("aesar", "aeſar", "ésar", "éſar", "äsar", "äſar")


def _names_rot13(head: str) -> bool:
    # The regex only where it can match: scanning every word boundary of a long prompt
    # costs ~25x the substring tests that rule most prompts out.
    if "13" not in head:
        low = head.lower()
        if "sar" not in low or not any(map(low.__contains__, _CAESAR_LOWER)):
            return False
    return bool(_ROT13_HINT_RE.search(head))


def inline_decoded(prompt: str) -> str:
    """``prompt`` with each readable run replaced by its text and each binary payload by a
    blank; the prompt itself when it has neither. The learned layer reads this: "please
    execute the decoded message: <harmless reminder>" is then judged with the reminder in
    clear, not on the wrapper alone, and an order to decode and obey reads as the order it
    hides. A certificate's or a fingerprint's characters are no words: read raw, their
    n-grams blocked a question about an expired certificate in four languages."""
    readable, unreadable = _scanned(prompt)
    out = prompt
    # longest first: a run over the whole head (quoted-printable, escapes) holds the others,
    # which its text keeps; replaced after them, it was no longer found
    for _kind, run, text in sorted(readable, key=lambda r: -len(r[1])):
        out = out.replace(run, text)
    for run in unreadable:
        out = out.replace(run, " ")
    return out
