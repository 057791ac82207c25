"""Fixtures: the real SmolLM2 (loaded once per session, fp32) and a tiny random HF model dir."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tools.dev.make_tiny_model import make_tiny_model
from worker.loader import LoadedModel, load_model, resolve_path
from worker.model_runner import ModelRunner


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return resolve_path("smollm2:135m")


@pytest.fixture(scope="session")
def smollm2(smollm2_path: Path) -> LoadedModel:
    return load_model(str(smollm2_path), dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"), seed=0)


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path) -> LoadedModel:
    return load_model(str(tiny_model_dir), dtype=torch.float32)


@pytest.fixture(scope="session")
def tiny_qwen_like_model(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """Tiny variant with q/k/v biases (Qwen2-style), tied embeddings and linear RoPE scaling."""
    path = make_tiny_model(
        tmp_path_factory.mktemp("tiny-bias"),
        seed=1,
        attention_bias=True,
        tie_word_embeddings=True,
        rope_scaling={"rope_type": "linear", "factor": 2.0},
    )
    return load_model(str(path), dtype=torch.float32)


@pytest.fixture(scope="session")
def make_runner() -> Callable[..., ModelRunner]:
    """Factory: a fresh ModelRunner (own KV cache) over an already loaded model."""

    def make(lm: LoadedModel, max_num_seqs: int = 4, max_model_len: int = 256) -> ModelRunner:
        return ModelRunner(
            lm.model,
            lm.config,
            max_num_seqs=max_num_seqs,
            max_model_len=max_model_len,
            dtype=next(lm.model.parameters()).dtype,
            device="cpu",
        )

    return make
