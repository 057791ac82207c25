"""Train the learned layer's semantic half (see ``mesh/filter/learned_semantic.py``).

The features of a window of n tokens are the encoder's pooled vector
``sum(u_t) / sqrt(n + PRIOR)`` (512 dims, ``u_t`` from
``tools/train_filter_distil.py``; the encoder pools with sqrt(n), the pseudo-count
shrinks short windows) and ``sqrt(n)`` (which also absorbs the encoder's
per-token output bias, ``n c / sqrt(n)``); the head is logistic regression on them, trained with the same
max over windows the runtime computes (multiple-instance style), on one torch
thread with fixed seeds. The trained head is then folded into one weight per
token. Called by ``python -m tools.train_filter``; the fusion weight with the
character model and the threshold are chosen there, on the dev split only.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from mesh.filter import learned, learned_semantic
from mesh.filter.learned_semantic import token_ids, windows


def sem_text(text: str) -> str:
    """What the semantic half reads: the character model's prepared text (folded,
    encoded runs masked, whitespace collapsed), as a string."""
    return learned.cps_text(learned.prepare(learned.fold_text(text)))


def window_features(
    tok: Tokenizer, vectors: np.ndarray, texts: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """[windows, 513] float32 features of every text, and each text's first row
    (``offsets[i]:offsets[i + 1]`` are text i's windows)."""
    feats, offsets = [], [0]
    dim = vectors.shape[1]
    for text in texts:
        ids, _, _ = token_ids(tok, sem_text(text))
        s, e = windows(len(ids))
        c = np.zeros((len(ids) + 1, dim), dtype=np.float64)
        np.cumsum(vectors[ids], axis=0, out=c[1:])
        n = np.maximum(e - s, 1).astype(np.float64)[:, None]
        pooled = (c[e] - c[s]) / np.sqrt(n + learned_semantic.PRIOR)
        f = np.concatenate([pooled, np.sqrt(n)], axis=1)
        feats.append(f.astype(np.float32))
        offsets.append(offsets[-1] + len(f))
    return np.concatenate(feats), np.asarray(offsets)


def train_head(
    feats: np.ndarray, offsets: np.ndarray, labels: np.ndarray, *, seed: int, epochs: int,
    lr: float = 3e-3, weight_decay: float = 1e-4, batch: int = 256,
) -> tuple[np.ndarray, float]:  # fmt: skip
    """Linear head on the window features, max over each text's windows.
    Call inside ``tools.train_filter.train`` (one thread, deterministic)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    head = torch.nn.Linear(feats.shape[1], 1)
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    x = torch.from_numpy(feats)
    pos_weight = float((~labels).sum() / max(labels.sum(), 1))
    for _ in range(epochs):
        order = rng.permutation(len(labels))
        for b in range(0, len(order), batch):
            idx = order[b : b + batch]
            rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in idx])
            lens = [int(offsets[i + 1] - offsets[i]) for i in idx]
            z = head(x[torch.from_numpy(rows)]).squeeze(-1)
            z = torch.stack([part.max() for part in torch.split(z, lens)])
            y = torch.from_numpy(labels[idx].astype(np.float32))
            w = torch.where(y > 0, torch.tensor(pos_weight), torch.tensor(1.0))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y, weight=w)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head.weight.detach().numpy()[0].astype(np.float64), float(head.bias.detach()[0])


def fold_head(w: np.ndarray, bias: float, vectors: np.ndarray) -> dict:
    """One weight per token: a window's logit is sum(u_t . w) / sqrt(n + PRIOR) +
    w_len * sqrt(n) + bias."""
    token_weight = (vectors.astype(np.float64) @ w[:-1]).astype(np.float16)
    length_weight = float(w[-1])
    digest = hashlib.sha256(
        token_weight.tobytes() + np.float64(length_weight).tobytes() + np.float64(bias).tobytes()
    ).hexdigest()[:16]
    return {"token_weight": token_weight, "length_weight": length_weight, "bias": bias,
            "digest": digest}  # fmt: skip


def save_semantic(head: dict, tok: Tokenizer, weights: Path, tokenizer: Path) -> None:
    weights.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        weights,
        token_weight=head["token_weight"],
        length_weight=np.float64(head["length_weight"]),
        bias=np.float64(head["bias"]),
        window=np.int64(learned_semantic.WINDOW),
        stride=np.int64(learned_semantic.STRIDE),
        prior=np.float64(learned_semantic.PRIOR),
    )
    # mtime=0: the same vocabulary gives the same bytes
    tokenizer.write_bytes(gzip.compress(tok.to_str().encode("utf-8"), 9, mtime=0))
    size = (weights.stat().st_size + tokenizer.stat().st_size) / 1e6
    print(f"wrote {weights} and {tokenizer} ({size:.2f} MB)")
