"""A Hugging Face directory's generation_config.json: the model's recommended sampling and the
extra end-of-turn tokens its chat models stop on (Qwen3's <|im_end|> beside <|endoftext|>,
Llama 3.x's <|eot_id|> and <|eom_id|>), as transformers' `generate` reads them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from worker.sampling_params import SamplingDefaults

FILE = "generation_config.json"


@dataclass(frozen=True, slots=True)
class GenerationConfig:
    sampling: SamplingDefaults | None = None  # None: the file recommends nothing
    eos_token_ids: list[int] = field(default_factory=list)


def read_generation_config(path: Path) -> GenerationConfig:
    """The directory's generation config; an empty one for a file model or none given. A
    file that does not parse, or a value of the wrong type, is a ValueError naming it."""
    gen = path / FILE if path.is_dir() else None
    if gen is None or not gen.exists():
        return GenerationConfig()
    try:
        cfg: dict[str, Any] = json.loads(gen.read_text())
        return GenerationConfig(_sampling(cfg), _eos(cfg.get("eos_token_id")))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{gen}: not a usable generation config ({exc})") from None


def _sampling(cfg: dict[str, Any]) -> SamplingDefaults | None:
    if not {"do_sample", "temperature", "top_p", "top_k"} & cfg.keys():
        return None
    if not cfg.get("do_sample", True):
        return SamplingDefaults(temperature=0.0)
    return SamplingDefaults(
        temperature=float(cfg.get("temperature", 1.0)),
        top_p=float(cfg.get("top_p", 1.0)),
        top_k=max(0, int(cfg.get("top_k") or 0)),
    )


def _eos(value: Any) -> list[int]:
    if value is None:
        return []
    ids = value if isinstance(value, list) else [value]
    return [int(i) for i in ids]
