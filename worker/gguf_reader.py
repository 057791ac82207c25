"""Read a GGUF file (as llama.cpp's convert_hf_to_gguf.py writes it) into a family, its
config and Hugging Face-named weights, dequantised by the `gguf` package (f32, f16, bf16 and
the quantisations it reads: q8_0, q4_0, q4_1, k-quants...).

Per architecture: the tensor names that differ from Llama's (`GGUF_TO_HF_BY_ARCH`), the
metadata the config needs (`gguf_config`), and whether the converter permuted Q/K rows (its
Llama path only). Gemma 3's norms come out of the converter with the `+1` already added,
which is the form our model holds, so its HF renaming is not applied here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from worker.models.llama_config import FULL, SLIDING, LlamaConfig
from worker.models.registry import Family, UnsupportedArchitecture, family_by_name
from worker.tokenizer import Tokenizer

# GGUF tensor name (after `blk.N.`) -> HF name (after `model.layers.N.`).
GGUF_TO_HF = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GGUF_TO_HF_BY_ARCH = {
    "gemma3": GGUF_TO_HF
    | {
        "ffn_norm": "pre_feedforward_layernorm",
        "post_attention_norm": "post_attention_layernorm",
        "post_ffw_norm": "post_feedforward_layernorm",
    },
}
GGUF_GLOBAL_TO_HF = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
# general.architecture -> our family.
GGUF_FAMILIES = {
    "llama": "llama",
    "mistral": "llama",
    "qwen2": "llama",
    "qwen3": "qwen3",
    "gemma3": "gemma3",
}
GEMMA3_27B_LAYERS = 62  # llama.cpp scales Gemma 3 27B's queries by hidden/heads, not head_dim


def read_gguf_metadata(reader: Any) -> dict[str, Any]:
    """All key/value fields, decoded to Python values."""
    return {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}


def read_gguf(path: Path) -> tuple[Family, LlamaConfig, Tokenizer, dict[str, torch.Tensor]]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    meta = read_gguf_metadata(reader)
    arch = meta["general.architecture"]
    if arch not in GGUF_FAMILIES:
        raise UnsupportedArchitecture(
            f"unsupported GGUF architecture {arch!r}; supported: {', '.join(GGUF_FAMILIES)}"
        )
    cfg = gguf_config(meta, {t.name for t in reader.tensors})
    # Only the converter's Llama path (llama, mistral) permutes Q/K rows; the others do not.
    permuted = arch in ("llama", "mistral")
    names = GGUF_TO_HF_BY_ARCH.get(arch, GGUF_TO_HF)
    state = {
        _gguf_name_to_hf(t.name, names): _gguf_tensor(t, cfg, permuted) for t in reader.tensors
    }
    family = family_by_name(GGUF_FAMILIES[arch])
    return family, cfg, Tokenizer.from_gguf_fields(meta), state


def gguf_config(meta: dict[str, Any], tensor_names: set[str]) -> LlamaConfig:
    arch = meta["general.architecture"]

    def get(key: str, default: Any = None) -> Any:
        return meta.get(f"{arch}.{key}", default)

    n_heads = get("attention.head_count")
    hidden = get("embedding_length")
    head_dim = get("attention.key_length") or hidden // n_heads
    eos = meta.get("tokenizer.ggml.eos_token_id")
    cfg = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=get("feed_forward_length"),
        num_hidden_layers=get("block_count"),
        num_attention_heads=n_heads,
        num_key_value_heads=get("attention.head_count_kv", n_heads),
        vocab_size=get("vocab_size") or len(meta["tokenizer.ggml.tokens"]),
        rms_norm_eps=get("attention.layer_norm_rms_epsilon", 1e-5),
        rope_theta=get("rope.freq_base", 10000.0),
        rope_scaling=_rope_scaling(get),
        max_position_embeddings=get("context_length", 4096),
        tie_word_embeddings="output.weight" not in tensor_names,
        attention_bias="blk.0.attn_q.bias" in tensor_names,
        attention_out_bias="blk.0.attn_output.bias" in tensor_names,
        head_dim=head_dim,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=[eos] if eos is not None else [],
        qk_norm="blk.0.attn_q_norm.weight" in tensor_names,
    )
    if arch == "gemma3":
        _gemma3(cfg, get)
    elif get("attention.sliding_window"):  # Mistral v0.1: every layer
        cfg.sliding_window = int(get("attention.sliding_window"))
        cfg.layer_types = [SLIDING] * cfg.num_hidden_layers
    return cfg


def _rope_scaling(get: Any) -> dict[str, Any] | None:
    kind = get("rope.scaling.type")
    if kind in (None, "none"):
        return None
    if kind != "linear":
        raise ValueError(f"unsupported GGUF rope scaling {kind!r}")
    return {"rope_type": "linear", "factor": float(get("rope.scaling.factor"))}


def _gemma3(cfg: LlamaConfig, get: Any) -> None:
    """What llama.cpp's Gemma 3 reads or assumes: a global layer every 6 (unless the file
    says otherwise), sliding layers at rope base `freq_base_swa` (10000 when absent)."""
    n = cfg.num_hidden_layers
    pattern = get("attention.sliding_window_pattern")
    if isinstance(pattern, list):  # one flag per layer: True = sliding
        types = [SLIDING if p else FULL for p in pattern]
    else:
        every = int(pattern or 6)
        types = [SLIDING if (i + 1) % every else FULL for i in range(n)]
    scale_by = (
        cfg.hidden_size // cfg.num_attention_heads if n == GEMMA3_27B_LAYERS else cfg.head_dim
    )
    cfg.hidden_act = "gelu_pytorch_tanh"
    cfg.attention_scale = float(scale_by) ** -0.5
    cfg.embedding_multiplier = cfg.hidden_size**0.5
    cfg.final_logit_softcapping = get("final_logit_softcapping")
    cfg.sliding_window = get("attention.sliding_window")
    cfg.layer_types = types
    cfg.rope_local_theta = float(get("rope.freq_base_swa", 10000.0))


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


def _gguf_tensor(t: Any, cfg: LlamaConfig, permuted: bool) -> torch.Tensor:
    from gguf.quants import dequantize

    # gguf lists shapes innermost-first; dequantize returns the numpy (row-major) shape [out, in].
    w = torch.from_numpy(dequantize(t.data, t.tensor_type).copy())
    w = w.reshape(tuple(int(d) for d in reversed(t.shape)))
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
