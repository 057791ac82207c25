"""Read a GGUF file (as llama.cpp's convert_hf_to_gguf.py writes it) into a family, its
config and Hugging Face-named weights, dequantised by the `gguf` package (f32, f16, bf16 and
the quantisations it reads: q8_0, q4_0, q4_1, k-quants...).

The fields every architecture shares are read here; what differs per architecture (tensor
names, Q/K permutation, Granite's multipliers, experts, rope factors) is in
worker/gguf_families.py. Gemma 3's norms come out of the converter with the `+1` already
added, which is the form our model holds, so its HF renaming is not applied here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from worker.gguf_families import (
    GGUF_EXPERTS,
    GGUF_FAMILIES,
    GGUF_GLOBAL_TO_HF,
    GGUF_TO_HF,
    GGUF_TO_HF_BY_ARCH,
    PERMUTED_QK,
    ROPE_FACTOR_TENSORS,
    apply_arch_config,
    check_supported,
    rope_scaling,
)
from worker.models.llama_config import LlamaConfig
from worker.models.registry import Family, family_by_name
from worker.tokenizer import Tokenizer


def read_gguf_metadata(reader: Any) -> dict[str, Any]:
    """All key/value fields, decoded to Python values."""
    return {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}


def read_gguf(path: Path) -> tuple[Family, LlamaConfig, Tokenizer, dict[str, torch.Tensor]]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    meta = read_gguf_metadata(reader)
    arch = meta["general.architecture"]
    check_supported(meta)
    factors = {
        t.name.removesuffix(".weight"): _dequantize(t).tolist()
        for t in reader.tensors
        if t.name.removesuffix(".weight") in ROPE_FACTOR_TENSORS
    }
    cfg = gguf_config(meta, {t.name for t in reader.tensors}, factors)
    permuted = arch in PERMUTED_QK
    names = GGUF_TO_HF_BY_ARCH.get(arch, GGUF_TO_HF)
    state: dict[str, torch.Tensor] = {}
    for t in reader.tensors:
        if t.name.removesuffix(".weight") not in ROPE_FACTOR_TENSORS:
            state.update(_hf_tensors(t.name, _gguf_tensor(t, cfg, permuted), names))
    family = family_by_name(GGUF_FAMILIES[arch])
    return family, cfg, Tokenizer.from_gguf_fields(meta), state


def gguf_config(
    meta: dict[str, Any], tensor_names: set[str], factors: dict[str, list[float]] | None = None
) -> LlamaConfig:
    """factors: the rope factor tensors' values by name (`rope_freqs`, ...), if any."""
    arch = meta["general.architecture"]

    def get(key: str, default: Any = None) -> Any:
        return meta.get(f"{arch}.{key}", default)

    n_heads = get("attention.head_count")
    hidden = get("embedding_length")
    head_dim = get("attention.key_length") or hidden // n_heads
    eos = meta.get("tokenizer.ggml.eos_token_id")
    max_positions = get("context_length", 4096)
    cfg = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=get("feed_forward_length"),
        num_hidden_layers=get("block_count"),
        num_attention_heads=n_heads,
        num_key_value_heads=get("attention.head_count_kv", n_heads),
        vocab_size=get("vocab_size") or len(meta["tokenizer.ggml.tokens"]),
        rms_norm_eps=get("attention.layer_norm_rms_epsilon", 1e-5),
        rope_theta=get("rope.freq_base", 10000.0),
        rope_scaling=rope_scaling(get, factors or {}, max_positions),
        max_position_embeddings=max_positions,
        tie_word_embeddings="output.weight" not in tensor_names,
        attention_bias="blk.0.attn_q.bias" in tensor_names,
        attention_out_bias="blk.0.attn_output.bias" in tensor_names,
        head_dim=head_dim,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=[eos] if eos is not None else [],
        qk_norm="blk.0.attn_q_norm.weight" in tensor_names,
    )
    apply_arch_config(arch, cfg, get, tensor_names)
    return cfg


def _hf_tensors(
    name: str, w: torch.Tensor, names: dict[str, str]
) -> Iterator[tuple[str, torch.Tensor]]:
    """One GGUF tensor -> its HF-named tensor(s): stacked experts become one per expert."""
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", name)
    if m and m[2] in GGUF_EXPERTS:
        for e, expert in enumerate(w.unbind(0)):
            yield f"model.layers.{m[1]}.mlp.experts.{e}.{GGUF_EXPERTS[m[2]]}.weight", expert
    else:
        yield _gguf_name_to_hf(name, names), w


def _gguf_name_to_hf(name: str, names: dict[str, str]) -> str:
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", name)
    if m:
        if m[2] not in names:
            raise ValueError(f"unknown GGUF tensor {name!r}")
        return f"model.layers.{m[1]}.{names[m[2]]}.{m[3]}"
    base, _, kind = name.rpartition(".")
    if base not in GGUF_GLOBAL_TO_HF:
        raise ValueError(f"unknown GGUF tensor {name!r}")
    return f"{GGUF_GLOBAL_TO_HF[base]}.{kind}"


def _dequantize(t: Any) -> torch.Tensor:
    from gguf.quants import dequantize

    # gguf lists shapes innermost-first; dequantize returns the numpy (row-major) shape
    # [out, in] ([experts, out, in] for stacked experts).
    w = torch.from_numpy(dequantize(t.data, t.tensor_type).copy())
    return w.reshape(tuple(int(d) for d in reversed(t.shape)))


def _gguf_tensor(t: Any, cfg: LlamaConfig, permuted: bool) -> torch.Tensor:
    w = _dequantize(t)
    if not permuted:
        return w
    if re.search(r"\.attn_q\.(weight|bias)$", t.name):
        w = unpermute_rope(w, cfg.num_attention_heads)
    elif re.search(r"\.attn_k\.(weight|bias)$", t.name):
        w = unpermute_rope(w, cfg.num_key_value_heads)
    return w


def unpermute_rope(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Inverse of convert_hf_to_gguf.py's `permute` for Q/K rows.

    llama.cpp rotates interleaved pairs (0,1), (2,3)...; HF checkpoints rotate halves (i, i+hd/2).
    The converter reshaped rows to [heads, 2, hd/2] and swapped to [heads, hd/2, 2]; swap back.
    """
    rows = w.shape[0]
    return (
        w.reshape(n_heads, rows // n_heads // 2, 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)
    )
