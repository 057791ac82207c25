"""generation_config.json: the model's sampling defaults (temperature, top_p, top_k) and its
end-of-turn ids, read by the loader."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from mesh.pb import common_pb2
from worker.generation_config import GenerationConfig, read_generation_config
from worker.loader import load_model
from worker.sampling_params import SamplingDefaults, SamplingParams

QWEN3 = {
    "bos_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "pad_token_id": 151643,
    "temperature": 0.6,
    "top_k": 20,
    "top_p": 0.95,
    "transformers_version": "4.51.0",
}


def write(tmp_path: Path, cfg: object) -> Path:
    (tmp_path / "generation_config.json").write_text(json.dumps(cfg))
    return tmp_path


def test_qwen3s_generation_config(tmp_path: Path) -> None:
    got = read_generation_config(write(tmp_path, QWEN3))
    assert got == GenerationConfig(SamplingDefaults(0.6, 0.95, 20), [151645, 151643])


def test_greedy_only_ids_and_nothing(tmp_path: Path) -> None:
    assert read_generation_config(write(tmp_path, {"do_sample": False})).sampling == (
        SamplingDefaults(temperature=0.0)
    )
    only_ids = read_generation_config(write(tmp_path, {"eos_token_id": 7}))
    assert only_ids == GenerationConfig(None, [7])
    assert read_generation_config(tmp_path / "missing") == GenerationConfig()


def test_a_broken_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "generation_config.json").write_text("{oops")
    with pytest.raises(ValueError, match="generation_config.json: not a usable"):
        read_generation_config(tmp_path)


def test_top_k_default_applies_when_the_request_sets_none() -> None:
    defaults = SamplingDefaults(0.6, 0.95, 20)
    assert SamplingParams.from_pb(common_pb2.SamplingParams(), defaults).top_k == 20
    assert SamplingParams.from_pb(common_pb2.SamplingParams(top_k=5), defaults).top_k == 5


def test_the_loader_reads_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, path)
    write(path, {**QWEN3, "eos_token_id": [2, 5]})
    loaded = load_model(str(path), dtype=torch.float32)
    assert loaded.sampling_defaults == SamplingDefaults(0.6, 0.95, 20)
    assert 5 in loaded.eos_token_ids and 2 in loaded.eos_token_ids
