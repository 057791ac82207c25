"""Learned layer: hashed character n-grams + logistic regression, in numpy.

Why this model: it is trained in seconds on CPU (``python -m tools.train_filter``),
its weights are one float16 vector (2^20 buckets, ~2 MB compressed), and its
inference is two passes over the code points of the folded text (NFKC, casefold,
invisibles removed, lookalikes folded: the same form the pattern rules see;
``prepared.py``): one rolling hash per n-gram order, one gather of weights. Both passes
run in C where a compiler is (``ngram_kernel``), else in numpy, with the same result.
Each n-gram's weight is attributed to its start position, so the score of any
window is a difference of two cumulative sums: a prompt is scored as the
maximum over overlapping windows of about one clause (an attack buried in a
long document or followed by a long payload is not diluted; the model is
trained with the same max over windows), and the span that drove the score
comes for free.

The weights live in ``weights/learned.npz`` next to this module; the threshold
stored with them was set by ``tools/calibrate_filter.py`` on fresh hand-written prompts
that training never read and on the repo corpus (see ``weights/MODEL_CARD.md``).
When that file carries a fusion weight ``alpha`` > 0, the semantic half
(``learned_semantic.py``: static tokens of a multilingual sentence encoder) adds
its best window's logit; the committed file has none (measured, not adopted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import ngram_kernel
from .encoded import inline_decoded
from .learned_semantic import SEMANTIC_PATH, TOKENIZER_PATH, Semantic, semantic, sliding_windows
from .normalize import fold_text
from .pasted_review import review_lead
from .prepared import cps_text, prepare
from .quoted_example import discussed_example
from .quoting import mention_context
from .verdict import BLOCK_THRESHOLD, Reason

LAYER = "learned"
RULE = "learned.classifier"
Keep = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (code points, window starts) -> mask
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "learned.npz"

# Feature definition: shared by training and inference (change = retrain).
BITS = 20
ORDERS = (1, 2, 3, 4, 5, 6)
WINDOW = 96  # characters per scored window (about one clause: where an attack lives)
STRIDE = 24
SPAN_CHARS = 48
CHUNK = 65_536  # characters scored at a time
# Shorter prompts are left to the rules: a fragment ("all previous instructions")
# or a bare request is not an attack on its own (SPEC §4 judges fragments across
# requests, in the behaviour layer), and the model is least reliable there.
MIN_BYTES = 32  # UTF-8 bytes: a short CJK sentence still counts
# Pseudo-count of zero-weight n-grams added to every window: a window of a few
# characters (a short prompt) has few n-grams and a noisy mean; this shrinks
# its logit towards the bias, so short texts need strong evidence. At 20 a status line
# ("all systems operational | API ok") scored 0.84 and bound the threshold; retrained at
# 80, the fourteenth split (spent, as dev) gave 70.7 % recall / 1.0 % FPR at the calibrated
# threshold against 67.0 % / 1.1 % (200: 69.5 % / 1.1 %; see weights/MODEL_CARD.md).
PRIOR = 80.0
# The semantic half reads prompts up to SEM_FULL_CHARS prepared characters whole;
# in longer ones, SEM_REGIONS stretches around the n-gram model's best windows
# (SEM_MARGIN characters each side), so its cost stays bounded.
SEM_FULL_CHARS = 4096
SEM_REGIONS = 4
SEM_MARGIN = 448


def _signed(x: int) -> np.int64:
    """A 64-bit constant as int64: hashing wraps modulo 2**64 in signed arithmetic,
    which gives the same bits as unsigned and lets the ids index arrays directly."""
    return np.array(x, dtype=np.uint64).view(np.int64)[()]


_P = _signed(0x100000001B3)  # FNV prime: rolling polynomial hash
_MIX = _signed(0x9E3779B97F4A7C15)  # Fibonacci hashing of the final value
_SALT = _signed(0x632BE59BD9B4E019)
_SHIFT = np.int64(64 - BITS)
_MASK = np.int64(2**BITS - 1)
_HASHING = tuple(int(x) % 2**64 for x in (_P, _MIX, _SALT))  # unsigned, for the C kernel


def ngram_matrix(cps: np.ndarray) -> np.ndarray:
    """Bucket ids, one row per order: ``m[k, i]`` is the n-gram of order ORDERS[k] starting
    at i (0 where the text ends before it: see ``valid_until``). One matrix, so inference
    gathers and sums every order in one numpy call each: on a prompt of a few hundred
    characters the per-call overhead, not the arithmetic, is most of the layer's cost."""
    out = np.empty((len(ORDERS), len(cps)), dtype=np.int64)
    h, k = cps, 0
    with np.errstate(over="ignore"):
        for n in range(1, max(ORDERS) + 1):
            if n > 1:
                h = h[:-1] * _P + cps[n - 1 :]
            if n in ORDERS:
                out[k, : len(h)] = h + _SALT * np.int64(n)
                out[k, len(h) :] = 0
                k += 1
        out *= _MIX
    out >>= _SHIFT
    out &= _MASK
    return out


def valid_until(n: int) -> list[int]:
    """Per order (row of ``ngram_matrix``), how many start positions hold a whole n-gram."""
    return [max(n - order + 1, 0) for order in ORDERS]


def ngram_ids(cps: np.ndarray) -> list[np.ndarray]:
    """Bucket ids per order; ``ids[k][i]`` is the n-gram of order ORDERS[k] starting at i."""
    return [row[:end] for row, end in zip(ngram_matrix(cps), valid_until(len(cps)), strict=True)]


def features(text: str) -> np.ndarray:
    """All bucket ids of a raw text (training helper)."""
    ids = ngram_ids(prepare(fold_text(text)))
    return np.concatenate(ids) if ids else np.zeros(0, dtype=np.uint64)


def windows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end positions of the scored windows of a text of ``n`` code points."""
    return sliding_windows(n, WINDOW, STRIDE)


@dataclass(frozen=True)
class Model:
    """Character n-grams, fused with the semantic half when there is one: the
    prompt's logit is the best n-gram window's plus ``alpha`` times the best token
    window's (each half takes its own maximum; alpha and the threshold were chosen
    together on the dev split)."""

    weights: np.ndarray  # float32 [2**BITS]
    bias: float
    threshold: float  # probability at or above which the layer blocks
    alpha: float = 0.0  # weight of the semantic half (0: n-grams alone)
    semantic: Semantic | None = None

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH, sem: Semantic | None = None) -> Model:
        with np.load(path) as z:
            if int(z["bits"]) != BITS or tuple(z["orders"].tolist()) != ORDERS:
                raise ValueError(f"{path}: feature definition differs from this code")
            alpha = float(z["alpha"]) if "alpha" in z.files else 0.0
            if alpha and sem is None and (sem := semantic()) is None:
                raise ValueError(f"{path}: needs the semantic weights, which are missing")
            weights = z["weights"].astype(np.float32)
            return cls(weights, float(z["bias"]), float(z["threshold"]), alpha, sem)

    def contributions(
        self, cps: np.ndarray, trim: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per start position: summed weights of its n-grams, and how many there are
        (with ``trim``, n-grams weighing under -trim are left out, as if absent)."""
        n = len(cps)
        w = np.take(self.weights, ngram_matrix(cps))
        ends = valid_until(n)
        if trim is None:  # whole n-grams only: the ids past a row's end weigh nothing
            for row, end in zip(w, ends, strict=True):
                row[end:] = 0.0
            count = np.full(n, len(ORDERS), dtype=np.float32)
            count[max(n - max(ORDERS), 0) :] = (
                np.arange(n)[max(n - max(ORDERS), 0) :] < np.array(ends)[:, None]
            ).sum(axis=0)
            return w.sum(axis=0), count
        kept = (np.arange(n) < np.array(ends)[:, None]) & (w >= -trim)
        return (w * kept).sum(axis=0), kept.sum(axis=0, dtype=np.float32)

    def window_logits(
        self, cps: np.ndarray, trim: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The n-gram logit of every window, and the windows' starts."""
        if trim is None:  # the same logits in C (None without a compiler: numpy)
            starts, ends = windows(len(cps))
            found = ngram_kernel.window_logits(
                cps, self.weights, BITS, ORDERS, _HASHING, starts, ends, PRIOR, self.bias
            )
            if found is not None:
                return found, starts
        return self.window_logits_numpy(cps, trim)

    def window_logits_numpy(
        self, cps: np.ndarray, trim: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``window_logits`` in numpy."""
        starts, ends = windows(len(cps))
        contrib, count = self.contributions(cps, trim)
        c = np.concatenate(([0.0], np.cumsum(contrib, dtype=np.float64)))
        k = np.concatenate(([0.0], np.cumsum(count, dtype=np.float64)))
        return (c[ends] - c[starts]) / (k[ends] - k[starts] + PRIOR) + self.bias, starts

    def score_cps(self, cps: np.ndarray, keep: Keep | None = None) -> tuple[float, int, str]:
        """Fused probability of prepared code points, the start of the best n-gram window,
        and the semantic span when that half drove the score (else ""). ``keep``: the
        windows that count (n-gram half only; the rejoin's, see ``rejoin``)."""
        logits, starts = self.window_logits(cps)
        if keep is not None:
            logits = np.where(keep(cps, starts), logits, -np.inf)
        best = int(np.argmax(logits))
        z, span = float(logits[best]), ""
        if self.alpha and self.semantic is not None and keep is None:
            zs, a, b, piece = self.semantic_best(cps, logits, starts)
            if self.alpha * zs > z:
                span = piece[a : min(b, a + SPAN_CHARS)].strip()
            z += self.alpha * zs
        return float(1.0 / (1.0 + np.exp(-z))), int(starts[best]), span

    def semantic_best(
        self, cps: np.ndarray, logits: np.ndarray, starts: np.ndarray
    ) -> tuple[float, int, int, str]:
        """Best semantic window: over the whole text when it is short, else around
        the n-gram model's SEM_REGIONS best windows (tokenising 100 KB would cost
        more than the whole filter's budget)."""
        out = (float("-inf"), 0, 0, "")
        if self.semantic is None:
            return out
        if len(cps) <= SEM_FULL_CHARS:
            text = cps_text(cps)
            return (*self.semantic.best(text), text)
        taken: list[int] = []
        for i in np.argsort(-logits, kind="stable"):
            s = int(starts[i])
            if any(abs(s - t) < SEM_MARGIN for t in taken):
                continue
            taken.append(s)
            text = cps_text(cps[max(s - SEM_MARGIN, 0) : s + WINDOW + SEM_MARGIN])
            found = self.semantic.best(text)
            if found[0] > out[0]:
                out = (*found, text)
            if len(taken) == SEM_REGIONS:
                break
        return out

    def score(self, text: str, folded: str | None = None) -> float:
        return self.score_cps(prepare(folded if folded is not None else fold_text(text)))[0]

    def span(self, cps: np.ndarray, start: int) -> str:
        """The SPAN_CHARS-wide stretch of the best window with the most weight."""
        end = min(start + WINDOW, len(cps))
        contrib, _ = self.contributions(cps[start:end])
        if len(contrib) <= SPAN_CHARS:
            a = 0
        else:
            c = np.concatenate(([0.0], np.cumsum(contrib, dtype=np.float64)))
            a = int(np.argmax(c[SPAN_CHARS:] - c[:-SPAN_CHARS]))
        piece = cps[start + a : start + a + SPAN_CHARS].astype(np.uint32).tobytes()
        return piece.decode("utf-32-le").strip()


@lru_cache(maxsize=1)
def model() -> Model | None:
    """The packaged model, or None (logged once) when the weights file is absent."""
    if WEIGHTS_PATH.exists():
        return Model.load(WEIGHTS_PATH, _semantic_beside(WEIGHTS_PATH))
    logging.getLogger(__name__).error(
        "learned filter layer OFF: %s is missing (package data not installed?)", WEIGHTS_PATH
    )
    return None


def _semantic_beside(path: Path) -> Semantic | None:
    """The semantic half saved next to ``path``, when its fusion weight asks for one
    (loading the tokenizer costs ~150 MB: not for a model that does not use it)."""
    with np.load(path) as z:
        if "alpha" not in z.files or not float(z["alpha"]):
            return None
    beside = path.parent / SEMANTIC_PATH.name, path.parent / TOKENIZER_PATH.name
    return Semantic.load(*beside) if all(p.exists() for p in beside) else None


def use_weights(path: Path) -> None:
    """Judge with other weights from now on (evaluation tools measuring a retrain); a
    semantic half saved beside them comes along."""
    global WEIGHTS_PATH
    WEIGHTS_PATH = path
    model.cache_clear()


def prepared_chunks(folded: str) -> Iterator[np.ndarray]:
    """The prepared code points of ``folded``, CHUNK characters at a time (each chunk
    starts a window early, so windows overlap the cuts): memory stays bounded, ~10 arrays
    of CHUNK int64/float32 however long the prompt."""
    for offset in range(0, max(len(folded), 1), CHUNK):
        yield prepare(folded[max(offset - WINDOW, 0) : offset + CHUNK])


def judge(
    folded: str, rule: str = RULE, detail: str = "", keep: Keep | None = None
) -> tuple[float | None, list[Reason]]:
    """The model's probability for a folded text (None when it is off or the text is
    under MIN_BYTES), and one reason when it reaches the threshold. The reason's score
    maps [threshold, 1] onto [BLOCK_THRESHOLD, 1], so the layer blocks on its own exactly
    when the model says so; below threshold it says nothing (weak learned hints would add
    to weak structure hints in the noisy OR and raise false positives)."""
    m = model()
    if m is None or len(folded.encode()) < MIN_BYTES:
        return None, []
    p, start, span, cps = -1.0, 0, "", np.zeros(0, dtype=np.int64)
    for piece in prepared_chunks(folded):
        q, s, sem_span = m.score_cps(piece, keep)
        if q > p:
            p, start, span, cps = q, s, sem_span, piece
    if p < m.threshold:
        return p, []
    score = BLOCK_THRESHOLD + (1.0 - BLOCK_THRESHOLD) * (p - m.threshold) / (1.0 - m.threshold)
    why = f"p={p:.3f} >= {m.threshold:.3f}" + (f"; {detail}" if detail else "")
    span = span or m.span(cps, start)
    return p, [Reason(LAYER, rule, round(min(score, 1.0), 4), span, why)]


def check_learned(folded: str, rule: str = RULE, detail: str = "") -> list[Reason]:
    return judge(folded, rule, detail)[1]


def judged_text(raw: str, discussions: bool = True, asked: bool = True) -> str:
    """What the layer judges of a prompt, read the way training reads prompts:
    - with the patterns' quote policy: in a short "what does '...' mean" question, what
      is inside the quotes is asked about, not said, so only the text outside the quotes;
      so too in a text that discusses the attack it quotes (``discussed_example``; with
      ``discussions=False`` not looked for: see ``judge_text``);
    - with its encoded payloads decoded in place (``encoded.inline_decoded``): the words
      around a payload ("decode this and do it") are judged with what it says. Masked,
      the payload left the wrapper alone to judge, and harmless payloads in a "decode
      and run" wrapper set the threshold (a dev retrain: 0.960 against 0.934);
    - the user's own system prompt pasted for review: only the lead-in (``review_lead``).
    ``asked=False``: not read as a short question (the cut end of a long prompt: rejoin)."""
    lead = review_lead(raw) or (mention_context(raw) if asked else None)
    if lead is None and discussions:
        lead = discussed_example(raw)
    return inline_decoded(lead or raw)
