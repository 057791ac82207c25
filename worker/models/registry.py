"""Which family serves a checkpoint: its config.json `architectures` (or `model_type`) ->
the config reader, the model class and the weight renaming of that family."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mesh.config import ConfigError
from worker.models import gemma3, granite, llama, phi3, qwen3
from worker.models.decoder import DecoderForCausalLM
from worker.models.llama_config import LlamaConfig

StateDict = dict[str, torch.Tensor]


def _same(state: StateDict) -> StateDict:
    return state


@dataclass(frozen=True)
class Family:
    name: str
    architectures: tuple[str, ...]
    model_types: tuple[str, ...]
    config_from_hf: Callable[[dict[str, Any]], LlamaConfig]
    model_class: type[DecoderForCausalLM] = llama.LlamaForCausalLM
    # Checkpoint names -> the Llama-style names `hf_to_internal` packs (Hugging Face dirs).
    rename: Callable[[StateDict], StateDict] = _same


FAMILIES = (
    Family(
        "llama",
        ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"),
        ("llama", "mistral", "qwen2"),
        llama.config_from_hf,
    ),
    Family("qwen3", ("Qwen3ForCausalLM",), ("qwen3",), qwen3.config_from_hf),
    Family(
        "qwen3_moe",
        ("Qwen3MoeForCausalLM",),
        ("qwen3_moe",),
        qwen3.moe_config_from_hf,
        rename=qwen3.moe_rename,
    ),
    Family("granite", ("GraniteForCausalLM",), ("granite",), granite.config_from_hf),
    Family(
        "granitemoe",
        ("GraniteMoeForCausalLM",),
        ("granitemoe",),
        granite.moe_config_from_hf,
        rename=granite.moe_rename,
    ),
    Family(
        "gemma3",
        ("Gemma3ForCausalLM", "Gemma3ForConditionalGeneration"),
        ("gemma3_text", "gemma3"),
        gemma3.config_from_hf,
        gemma3.Gemma3ForCausalLM,
        gemma3.rename,
    ),
    Family("phi3", ("Phi3ForCausalLM",), ("phi3",), phi3.config_from_hf),
)
SUPPORTED = tuple(a for f in FAMILIES for a in f.architectures)


class UnsupportedArchitecture(ConfigError):
    """A checkpoint no family reads (a ConfigError: the worker refuses it at start)."""


def family_of(hf_config: dict[str, Any]) -> Family:
    """The family named by config.json's `architectures` (first match), else `model_type`."""
    archs = hf_config.get("architectures") or []
    for family in FAMILIES:
        if any(a in family.architectures for a in archs):
            return family
    model_type = hf_config.get("model_type")
    for family in FAMILIES:
        if not archs and model_type in family.model_types:
            return family
    named = ", ".join(archs) or f"model_type {model_type!r}"
    raise UnsupportedArchitecture(
        f"unsupported architecture {named}; supported: {', '.join(SUPPORTED)}"
    )


def family_by_name(name: str) -> Family:
    return next(f for f in FAMILIES if f.name == name)


def read_config(hf_config: dict[str, Any]) -> tuple[Family, LlamaConfig]:
    """config.json -> (family, config); a multimodal checkpoint's text part (text_config)."""
    family = family_of(hf_config)
    text = hf_config.get("text_config")
    if text:
        text = {"architectures": hf_config.get("architectures"), **text}
        text.setdefault("tie_word_embeddings", hf_config.get("tie_word_embeddings", True))
    cfg = family.config_from_hf(text or hf_config)
    cfg.architecture = (hf_config.get("architectures") or [cfg.architecture])[0]
    return family, cfg


# A multimodal checkpoint's language model, under either layout transformers has saved.
TEXT_PREFIXES = {
    "language_model.model.": "model.",
    "language_model.lm_head.": "lm_head.",
    "model.language_model.": "model.",
}
VISION_PARTS = ("vision_tower", "multi_modal_projector", "vision_model", "embed_vision")


def text_weights(state: StateDict) -> StateDict:
    """Drops a multimodal checkpoint's vision weights and moves its language model's to the
    plain decoder names; a text-only checkpoint is returned as is."""
    out: StateDict = {}
    for name, t in state.items():
        if any(part in name for part in VISION_PARTS):
            continue
        for old, new in TEXT_PREFIXES.items():
            if name.startswith(old):
                name = new + name[len(old) :]
                break
        out[name] = t
    return out
