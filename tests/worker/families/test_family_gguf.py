"""Qwen3 and Gemma 3 through GGUF: the tiny checkpoint is written to GGUF by llama.cpp's own
`convert_hf_to_gguf.py` (from the llama-cpp-python sdist, tests/llamacpp_sources.py), so our
reader is checked against their writer. f32: the same 32 greedy tokens as transformers;
q8_0: the same greedy tokens while the reference's choice is clear, logits close."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.llamacpp_sources import llamacpp_root
from tests.worker.families.test_family_parity import forced_steps, runner
from tests.worker.families.tiny import GREEDY_TOKENS, PROMPT, Family
from worker.loader import load_model

CONVERT_TIMEOUT_S = 600
# Logits of every greedy step against transformers' fp32 ones, |diff| / the step's scale.
TOLERANCE = {"f32": 1e-4, "q8_0": 0.06}  # q8_0 of random weights


@pytest.fixture(scope="module")
def converter() -> Path:
    pytest.importorskip("sentencepiece", reason="llama.cpp's converter imports sentencepiece")
    return llamacpp_root() / "convert_hf_to_gguf.py"


@pytest.fixture(scope="module")
def gguf_of(converter: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    out_dir = tmp_path_factory.mktemp("gguf")

    def convert(family: Family, outtype: str) -> Path:
        out = out_dir / f"{family.name}-{outtype}.gguf"
        cmd = [sys.executable, str(converter), str(family.path), "--outfile", str(out)]
        done = subprocess.run(
            [*cmd, "--outtype", outtype], capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S
        )
        assert done.returncode == 0, f"convert_hf_to_gguf.py failed:\n{done.stderr[-3000:]}"
        return out

    return convert


@pytest.mark.parametrize("outtype", list(TOLERANCE))
@pytest.mark.parametrize("name", ["qwen3", "gemma3"])
@torch.inference_mode()
def test_gguf_from_llama_cpp_converter_matches_transformers(
    name: str, outtype: str, make_family: Callable[[str], Family], gguf_of
) -> None:
    family = make_family(name)
    lm = load_model(str(gguf_of(family, outtype)), dtype=torch.float32)
    assert type(lm.model) is type(family.fp32.model)
    assert lm.tokenizer.encode(PROMPT) == family.prompt  # their vocab writer, our reader
    ours = forced_steps(runner(lm), family.prompt, family.tokens)
    scale = family.logits.abs().amax(dim=-1)
    worst = ((ours - family.logits).abs().amax(dim=-1) / scale).max().item()
    assert worst <= TOLERANCE[outtype], f"{name} {outtype}: max |diff| / scale {worst:.2e}"
    top2 = family.logits.topk(2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > 2 * TOLERANCE[outtype] * scale
    assert torch.equal(ours.argmax(-1)[clear], family.logits.argmax(-1)[clear])
    if outtype == "f32":  # free-running greedy, no teacher forcing: the very same tokens
        r = runner(lm)
        tokens = [int(r.prefill(0, family.prompt).argmax())]
        for i in range(GREEDY_TOKENS - 1):
            tokens.append(int(r.decode([0], [tokens[-1]], [len(family.prompt) + i])[0].argmax()))
        assert tokens == family.tokens
