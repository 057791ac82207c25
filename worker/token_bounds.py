"""A lower bound on a text's token count without tokenising it: a prompt of N UTF-8 bytes
needs at least ceil(N / the most bytes one token stands for) tokens; with a pre-tokeniser
that splits every digit on its own (SmolLM2's), each ASCII digit is a token of its own too.

Only tokenizers where the bound is sound get one: a BPE model that never folds a run of
unknown characters into one token, a normaliser that shrinks text by a known factor at most,
and a pre-tokeniser that drops no input. Anything else returns None (no early refusal).

`vocab_limits` gives the router the same facts (Info): the most bytes and the most runs of
one repeated byte a token holds (mesh.prompt_bounds refuses a prompt from them before any
tokenising); 0 for a limit that is not sound for the tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from tokenizers import Tokenizer as HFTokenizer

# Unicode normal forms and case folding shrink UTF-8 by 3x at most (three 3-byte Hangul
# jamo compose into one 3-byte syllable; U+1E9E -> U+00DF is 3 -> 2).
_UNICODE_SHRINK = 3
_UNICODE_NORMALIZERS = {"NFC", "NFD", "NFKC", "NFKD", "Lowercase"}
# Pre-tokenisers that split text but keep every byte of it (not Whitespace, which drops it).
_KEEPING_PRE_TOKENIZERS = {"ByteLevel", "Digits", "Metaspace", "UnicodeScripts"}
_SPLITTING_PRE_TOKENIZERS = {"Split", "Punctuation"}  # keep bytes unless behavior "Removed"


@dataclass(slots=True, frozen=True)
class SizeBound:
    per_token: int  # the most input bytes one token stands for
    digits_alone: bool  # every ASCII digit is a token of its own

    def at_least(self, num_bytes: int, num_digits: int) -> int:
        """Tokens of a text of `num_bytes` bytes, `num_digits` of them digits that are
        tokenised alone (0 unless digits_alone). Tokens never span pre-tokens, so the digits
        and the rest bound separately."""
        digits = num_digits if self.digits_alone else 0
        return digits + -(-(num_bytes - digits) // self.per_token)


def size_bound(tok: HFTokenizer) -> SizeBound | None:
    """The tokenizer's SizeBound, or None where no bound is sound."""
    per_token = max_bytes_per_token(tok)
    if per_token is None:
        return None
    spec = json.loads(tok.to_str())
    alone = spec.get("normalizer") is None and _splits_digits(spec.get("pre_tokenizer"))
    return SizeBound(per_token, alone)


@dataclass(slots=True, frozen=True)
class VocabLimits:
    max_token_bytes: int  # 0: no sound bound
    max_token_runs: int  # 0: no sound bound


def vocab_limits(tok: HFTokenizer) -> VocabLimits:
    """What the router's byte/run floor (mesh.prompt_bounds) may assume of this vocabulary."""
    return VocabLimits(max_bytes_per_token(tok) or 0, max_runs_per_token(tok) or 0)


def max_runs_per_token(tok: HFTokenizer) -> int | None:
    """-> the most runs of one repeated byte ("aab": 2) that one token's text holds, or None
    where that does not bound the runs of the input it covers.

    Sound when each token stands for a piece of the input whose runs are at most its own:
    a BPE model that folds no unknown run, a pre-tokeniser that keeps every byte, and no
    normaliser but the SentencePiece-style space marking (Prepend, " " -> "▁"), whose "▁" has
    more runs (3 bytes, none of which can join a neighbour) than the space it stands for.
    Case folding and Unicode forms can merge runs ("Aa" -> "aa"): None."""
    spec = json.loads(tok.to_str())
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or (model.get("unk_token") and model.get("fuse_unk")):
        return None
    if not _marks_spaces_only(spec.get("normalizer")):
        return None
    if not _keeps_every_byte(spec.get("pre_tokenizer")):
        return None
    byte_level = _has_byte_level(spec.get("pre_tokenizer"))
    return max(
        _runs(_token_text_bytes(token, byte_level))
        for token in tok.get_vocab(with_added_tokens=True)
    )


def _runs(data: bytes) -> int:
    return (1 + sum(a != b for a, b in zip(data, data[1:], strict=False))) if data else 0


def _token_text_bytes(token: str, byte_level: bool) -> bytes:
    """The bytes a vocabulary entry stands for (byte-level: GPT-2's table decoded); other
    vocabularies: their text, which has at least the runs of what it stands for."""
    raw = token.encode("utf-8", "surrogatepass")
    if not byte_level:
        return raw
    table = _byte_of_char()
    return b"".join(
        bytes([table[c]]) if c in table else c.encode("utf-8", "surrogatepass") for c in token
    )


def _marks_spaces_only(spec: dict[str, Any] | None) -> bool:
    if spec is None:
        return True
    kind = spec.get("type")
    if kind == "Sequence":
        return all(_marks_spaces_only(part) for part in spec.get("normalizers", []))
    if kind == "Prepend":
        return True
    if kind == "Replace":
        pattern = (spec.get("pattern") or {}).get("String")
        return pattern == " " and spec.get("content") == "\u2581"
    return False


def max_bytes_per_token(tok: HFTokenizer) -> int | None:
    """-> an upper bound on the input bytes behind one token, or None where none is sound."""
    spec = json.loads(tok.to_str())
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or (model.get("unk_token") and model.get("fuse_unk")):
        return None
    shrink = _normalizer_shrink(spec.get("normalizer"))
    if shrink is None or not _keeps_every_byte(spec.get("pre_tokenizer")):
        return None
    byte_level = _has_byte_level(spec.get("pre_tokenizer"))
    longest = max(
        _token_bytes(token, byte_level) for token in tok.get_vocab(with_added_tokens=True)
    )
    return longest * shrink


def _token_bytes(token: str, byte_level: bool) -> int:
    """Bytes of text one vocabulary entry stands for: byte-level BPE writes each byte as one
    character (GPT-2's table); other vocabularies are their text ("▁" for a space: more
    bytes than it stands for, which only loosens the bound)."""
    if not byte_level:
        return len(token.encode("utf-8", "surrogatepass"))
    table = _byte_of_char()
    return sum(1 if c in table else len(c.encode("utf-8", "surrogatepass")) for c in token)


@cache
def _byte_of_char() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, inverted: printable bytes stand for themselves, the others
    are shifted to 256 + n."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars, n = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + n)] = b
            n += 1
    return chars


def _normalizer_shrink(spec: dict[str, Any] | None) -> int | None:
    if spec is None:
        return 1
    kind = spec.get("type")
    if kind == "Sequence":
        factor = 1
        for part in spec.get("normalizers", []):
            f = _normalizer_shrink(part)
            if f is None:
                return None
            factor *= f
        return factor
    if kind == "Prepend":
        return 1
    if kind == "Replace":  # a fixed string by another: shrinks by their byte ratio at most
        pattern = (spec.get("pattern") or {}).get("String")
        content = spec.get("content") or ""
        if pattern is None or not content:
            return None
        return max(1, -(-len(pattern.encode()) // len(content.encode())))
    if kind in _UNICODE_NORMALIZERS:
        return _UNICODE_SHRINK
    return None  # Strip, BertNormalizer (drops control characters), regex Replace, ...


def _keeps_every_byte(spec: dict[str, Any] | None) -> bool:
    if spec is None:
        return True
    kind = spec.get("type")
    if kind == "Sequence":
        return all(_keeps_every_byte(part) for part in spec.get("pretokenizers", []))
    if kind in _SPLITTING_PRE_TOKENIZERS:
        return spec.get("behavior") != "Removed"
    return kind in _KEEPING_PRE_TOKENIZERS


def _has_byte_level(spec: dict[str, Any] | None) -> bool:
    if spec is None:
        return False
    if spec.get("type") == "Sequence":
        return any(_has_byte_level(part) for part in spec.get("pretokenizers", []))
    return spec.get("type") == "ByteLevel"


def _splits_digits(spec: dict[str, Any] | None) -> bool:
    if spec is None:
        return False
    if spec.get("type") == "Sequence":
        return any(_splits_digits(part) for part in spec.get("pretokenizers", []))
    return spec.get("type") == "Digits" and bool(spec.get("individual_digits"))
