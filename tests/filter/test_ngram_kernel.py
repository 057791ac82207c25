"""The learned layer's C passes (``ngram_kernel``) give numpy's results bit for bit, and the
layer works without them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from mesh.filter import learned, ngram_kernel, prepared
from mesh.filter.normalize import fold_text

HELDOUT = Path(__file__).parent / "heldout"

needs_kernel = pytest.mark.skipif(
    not ngram_kernel.available(), reason="no C compiler here: the filter runs on numpy alone"
)


def _heldout_texts(every: int = 5) -> list[str]:
    texts = []
    for path in sorted(HELDOUT.glob("fresh_test_4*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines()
        texts += [json.loads(line)["text"] for line in lines[::every] if line]
    return texts


def _random_texts(seed: int, count: int) -> list[str]:
    """Texts made of what ``prepare`` treats specially: whitespace, percent escapes, hex and
    base64 runs, leetspeak digits beside Latin letters (ASCII and past it), other digits,
    repeated characters, and code points past every table."""
    rng = random.Random(seed)
    pieces = list("aeio01345789fF%+/=. \t\n\r\x0b\x0cßéżɏɐ中ПЖ") + [
        "%41",
        "%4",
        "deadbeef" * 3,
        "QWxsIHlvdXIgYmFzZQ" * 2,
        "1gn0r3",
        "h264",
        "aaaaa",
        "!!!!!",
        "    ",
        "\x00",
        "\U0001f600",
        "0" * 20,
    ]
    out = []
    for _ in range(count):
        n = rng.randint(0, 60)
        out.append("".join(rng.choice(pieces) for _ in range(n)))
    return out


@needs_kernel
def test_prepare_in_c_is_numpy_prepare() -> None:
    for text in _heldout_texts() + _random_texts(3, 3000):
        folded = fold_text(text)
        fast, slow = prepared.prepare(folded), prepared.prepare_numpy(folded)
        assert fast.dtype == slow.dtype == np.int64
        assert np.array_equal(fast, slow), repr(text[:200])


@needs_kernel
def test_window_logits_in_c_are_numpy_logits() -> None:
    m = learned.model()
    assert m is not None
    for text in _heldout_texts() + _random_texts(4, 2000):
        cps = prepared.prepare_numpy(fold_text(text))
        fast, starts = m.window_logits(cps)
        slow, slow_starts = m.window_logits_numpy(cps)
        assert np.array_equal(starts, slow_starts)
        assert np.array_equal(fast, slow), repr(text[:200])  # bit for bit, not approximately


def test_the_layer_works_without_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _heldout_texts(every=40)
    with_kernel = [learned.judge(fold_text(t)) for t in texts]
    monkeypatch.setattr(ngram_kernel, "_library", lambda: None)
    assert not ngram_kernel.available()
    assert [learned.judge(fold_text(t)) for t in texts] == with_kernel
