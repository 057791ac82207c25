"""What the learned layer reads of a folded text: its code points (int64), padded with
spaces, with what carries no intent taken out (see ``prepare``). Training and inference
share it (change = retrain); it runs in C where a compiler is (``ngram_kernel``)."""

from __future__ import annotations

import numpy as np

from . import ngram_kernel
from .leet_fold import CHAR_CLASS, LEET_DIGITS, LEET_MAP, fold_leet

MIN_HEX_RUN = 16  # hex digits in a row that count as an encoded run
MAX_RUN = 3  # one character repeated: kept at most this many times in a row
MIN_B64_RUN = 24  # base64 alphabet in a row (with >= 2 digits or +/) = an encoded run


# What an ASCII character is to ``prepare`` (bits), one gather for every class: whitespace,
# a hex digit, the base64 alphabet; the last entry stands for every code point past ASCII.
_WS, _HEX, _B64 = 1, 2, 4
_KIND = np.zeros(129, dtype=np.uint8)
for _chars, _bit in ((" \t\n\x0b\x0c\r", _WS), ("0123456789abcdef", _HEX)):
    _KIND[[ord(c) for c in _chars]] |= _bit
_KIND[[ord(c) for c in "abcdefghijklmnopqrstuvwxyz0123456789+/"]] |= _B64


def _mask_runs(cps: np.ndarray, member: np.ndarray, min_len: int, need_digits: int = 0) -> None:
    """Set runs of ``member`` characters at least ``min_len`` long to 0, in place
    (with ``need_digits``: only runs holding that many digits, '+' or '/', so long
    words stay)."""
    edges = np.flatnonzero(np.diff(member.astype(np.int8)))
    if member[0]:
        edges = np.concatenate(([-1], edges))
    if len(edges) % 2:
        edges = np.concatenate((edges, [len(cps) - 1]))
    starts, ends = edges[0::2] + 1, edges[1::2] + 1
    keep = (ends - starts) >= min_len
    if need_digits and keep.any():
        odd = np.concatenate(([0], np.cumsum((cps < 97) & member)))
        keep &= (odd[ends] - odd[starts]) >= need_digits
    if keep.any():
        delta = np.zeros(len(cps) + 1, dtype=np.int64)
        np.add.at(delta, starts[keep], 1)
        np.add.at(delta, ends[keep], -1)
        cps[np.cumsum(delta[:-1]) > 0] = 0


_TRAILING = " \t\r\n.!?;:,。！？．…)\"'»”」"


def prepare(folded: str) -> np.ndarray:
    """Code points (int64) of the folded text, padded with spaces: whitespace runs
    become one space, and percent-encoded, long hex or base64 runs become one 0 (their
    content is the decoding layer's to judge; as n-grams they are noise).
    One pass in C (``ngram_kernel``); without a compiler, the same steps vectorised in
    numpy (no per-character Python or regex work either way)."""
    # Final punctuation says nothing about intent (and the training payloads all end
    # with "."): dropped, so "Tell me the weather." and "Tell me the weather" are one.
    raw = (" " + folded.rstrip(_TRAILING) + " ").encode("utf-32-le")
    fast = ngram_kernel.prepare(raw, _KIND, CHAR_CLASS, LEET_MAP, MIN_HEX_RUN, MIN_B64_RUN, MAX_RUN)
    return fast if fast is not None else prepare_numpy(folded)


def prepare_numpy(folded: str) -> np.ndarray:
    """``prepare`` in numpy."""
    folded = folded.rstrip(_TRAILING)
    cps = np.frombuffer((" " + folded + " ").encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    kind = _KIND[np.minimum(cps, len(_KIND) - 1)]
    cps[(kind & _WS) != 0] = 32
    hexd = (kind & _HEX) != 0
    if "%" in folded:
        pct = np.flatnonzero((cps[:-2] == 37) & hexd[1:-1] & hexd[2:])
        for k in range(3):
            cps[pct + k] = 0
    if any(d in folded for d in "0123456789"):
        _mask_runs(cps, hexd, MIN_HEX_RUN)
    if len(cps) > MIN_B64_RUN:  # not what the steps above masked (0)
        _mask_runs(cps, ((kind & _B64) != 0) & (cps != 0), MIN_B64_RUN, need_digits=2)
    if any(d in folded for d in LEET_DIGITS):
        cps = fold_leet(cps)
    dup = (cps[1:] == cps[:-1]) & ((cps[1:] == 32) | (cps[1:] == 0))
    if dup.any():
        cps = cps[np.concatenate(([True], ~dup))]
    # Runs of one character ("aaaa...", "!!!!!!", "pleeeease") say nothing about intent:
    # cut to MAX_RUN, so a flood of one letter is not read as its n-grams' weights.
    if len(cps) > MAX_RUN:
        same = cps[MAX_RUN:] == cps[MAX_RUN - 1 : -1]
        for k in range(1, MAX_RUN):
            same &= cps[MAX_RUN - k : len(cps) - k] == cps[MAX_RUN - k - 1 : len(cps) - k - 1]
        if same.any():
            cps = cps[np.concatenate((np.ones(MAX_RUN, dtype=bool), ~same))]
    return cps


def cps_text(cps: np.ndarray) -> str:
    """The prepared code points as a string (masked runs become spaces): what the
    semantic half reads."""
    return cps.astype(np.uint32).tobytes().decode("utf-32-le").replace("\x00", " ")
