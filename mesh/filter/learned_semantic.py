"""Semantic half of the learned layer: a multilingual sentence encoder made static.

Why: character n-grams recognise the words they were trained on, not a new way
of saying the same thing in another language. The multilingual Universal
Sentence Encoder (USE-m v3, a DAN + CNN encoder trained so that translations
land close together) knows that "停止遵循系统提示" and "stop following the
system prompt" mean the same. Running it costs ~1.7 M multiply-adds per token,
far over the filter's budget, so it is distilled once at training time
(``tools/train_filter_distil.py``, model2vec style): every vocabulary token goes
through the encoder alone, giving a 512-dim vector ``u_t``; the classifier is
linear in the encoder's pooled window vector ``(sum u_t + n c) / sqrt(n)``, so
its 513 weights fold into one number per token. At run time the layer is the
encoder's own tokenizer (``tokenizers``) and a float16 table of 128 K numbers:
a window's logit is ``sum(w[t]) / sqrt(n + PRIOR) + length_weight * sqrt(n) + bias``,
the prompt's the maximum over windows of WINDOW tokens. The head has only 513
trained parameters, all in the encoder's space: what it learns from one
language transfers to the phrasings and languages the encoder aligns with it.

Files: ``weights/semantic.npz`` (token weights, head constants) and
``weights/semantic_tokenizer.json.gz`` (the encoder's unigram vocabulary).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SEMANTIC_PATH = WEIGHTS_DIR / "semantic.npz"
TOKENIZER_PATH = WEIGHTS_DIR / "semantic_tokenizer.json.gz"

# Window definition: shared by training and inference (change = retrain).
WINDOW = 24  # tokens: about one clause
STRIDE = 8
# Pseudo-count of tokens in a window's pooling denominator: a window of a few
# tokens (a short prompt, a two-word UI string) has a noisy pooled vector; this
# shrinks its evidence, so short texts need strong evidence (as the n-gram model's
# PRIOR does). Chosen on the dev split (short catalog strings were its false alarms).
PRIOR = 24.0
# Text is tokenised at most this many characters at a time (cost grows faster
# than linearly on very long single pieces); pieces are cut at spaces.
PIECE_CHARS = 2048


def load_tokenizer(path: Path = TOKENIZER_PATH) -> Tokenizer:
    return Tokenizer.from_str(gzip.decompress(path.read_bytes()).decode("utf-8"))


def pieces(text: str, size: int = PIECE_CHARS) -> list[tuple[int, str]]:
    """(offset, piece) cuts of ``text`` at most ``size`` characters, at a space
    when there is one in the second half (a word is not split in two)."""
    out, i = [], 0
    while i < len(text):
        j = min(i + size, len(text))
        if j < len(text):
            k = text.rfind(" ", i + size // 2, j)
            j = k if k > i else j
        out.append((i, text[i:j]))
        i = j
    return out


def token_ids(tok: Tokenizer, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Token ids and each token's [start, end) character offsets in ``text``."""
    parts = pieces(text)
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    encs = tok.encode_batch([p for _, p in parts], add_special_tokens=False)
    ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encs])
    offs = [
        np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2) + o
        for (o, _), e in zip(parts, encs, strict=True)
    ]
    spans = np.concatenate(offs) if offs else np.zeros((0, 2), dtype=np.int64)
    return ids, spans[:, 0], spans[:, 1]


def sliding_windows(n: int, size: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of windows of ``size`` every ``stride`` over ``n`` positions, the
    last one flush with the end (one window of ``n`` when the text is shorter).
    Both halves of the learned layer use it (characters there, tokens here)."""
    if n <= size:
        return np.zeros(1, dtype=np.int64), np.full(1, n, dtype=np.int64)
    starts = np.arange(0, n - size + stride, stride, dtype=np.int64)
    starts[-1] = min(starts[-1], n - size)
    return starts, starts + size


def windows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end token positions of the scored windows of ``n`` tokens."""
    return sliding_windows(n, WINDOW, STRIDE)


@dataclass(frozen=True)
class Semantic:
    tokenizer: Tokenizer
    token_weight: np.ndarray  # float32 [vocab]: u_t . w
    length_weight: float  # the sqrt(n) feature's weight
    bias: float

    @classmethod
    def load(cls, path: Path = SEMANTIC_PATH, tokenizer: Path = TOKENIZER_PATH) -> Semantic:
        with np.load(path) as z:
            if (int(z["window"]), int(z["stride"]), float(z["prior"])) != (WINDOW, STRIDE, PRIOR):
                raise ValueError(f"{path}: window definition differs from this code")
            weights = z["token_weight"].astype(np.float32)
            return cls(
                load_tokenizer(tokenizer), weights, float(z["length_weight"]), float(z["bias"])
            )

    def best(self, text: str) -> tuple[float, int, int]:
        """Max window logit of ``text``, and the character span of that window
        (-inf and an empty span when the text has no token)."""
        ids, starts_c, ends_c = token_ids(self.tokenizer, text)
        if len(ids) == 0:
            return float("-inf"), 0, 0
        c = np.concatenate(([0.0], np.cumsum(np.take(self.token_weight, ids), dtype=np.float64)))
        s, e = windows(len(ids))
        n = (e - s).astype(np.float64)
        logits = (c[e] - c[s]) / np.sqrt(n + PRIOR) + self.length_weight * np.sqrt(n) + self.bias
        k = int(np.argmax(logits))
        return float(logits[k]), int(starts_c[s[k]]), int(ends_c[e[k] - 1])


@lru_cache(maxsize=1)
def semantic() -> Semantic | None:
    """The packaged semantic model, or None when its files are absent (the layer
    then runs on character n-grams alone, as its weights file says)."""
    if SEMANTIC_PATH.exists() and TOKENIZER_PATH.exists():
        return Semantic.load()
    return None
