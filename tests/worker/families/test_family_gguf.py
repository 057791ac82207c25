"""Every family through GGUF: the tiny checkpoint is written to GGUF by llama.cpp's own
`convert_hf_to_gguf.py` (from the llama-cpp-python sdist, tests/llamacpp_sources.py), so our
reader is checked against their writer: Q/K permutation (llama, mistral, granite), Granite's
multipliers, stacked experts, Phi-3's fused q/k/v and gate/up, rope factor tensors (Llama 3's
`rope_freqs`, Phi-3's short and long tables). f32, every family: the same 32 greedy tokens as
transformers; q8_0 (Qwen3, Gemma 3, Qwen3-MoE): the same greedy tokens while the reference's
choice is clear, logits close.

Where the shared tiny checkpoint has what llama.cpp cannot hold, the checkpoint is made
without it (VARIANTS): Qwen3-MoE's dense layer (`mlp_only_layers`: llama.cpp's qwen3moe
routes every layer, the converter refuses it) and Mistral's sliding window (the converter
drops it, llama.cpp attends in full). Phi-3's converter reads a byte-level BPE vocabulary
only when tokenizer_config.json names GPT2Tokenizer (Phi-4's layout), else it wants a
SentencePiece tokenizer.model: its input says so (the model and the reference are the same).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from gguf import GGUFWriter

from tests.llamacpp_sources import llamacpp_root
from tests.worker.families import tiny
from tests.worker.families.test_family_parity import forced_steps, runner
from tests.worker.families.tiny import GREEDY_TOKENS, PROMPT, Family
from worker.layers.mlp import Router
from worker.loader import LoadedModel, load_model
from worker.models.registry import UnsupportedArchitecture

CONVERT_TIMEOUT_S = 600
# Logits of every greedy step against transformers' fp32 ones, |diff| / the step's scale.
TOLERANCE = {"f32": 1e-4, "q8_0": 0.06}  # q8_0 of random weights
FAMILIES = [
    "llama3",
    "mistral",
    "qwen3",
    "qwen3_moe",
    "granite",
    "granitemoe",
    "gemma3",
    "phi3",
    "phi3_long",
]
# Every family unquantised; q8_0 (dequantised by the same code for every family) for the
# issue's two and one MoE (stacked experts).
QUANTISED = ["qwen3", "gemma3", "qwen3_moe"]
JOBS = [(name, "f32") for name in FAMILIES] + [(name, "q8_0") for name in QUANTISED]
# name -> (tiny.SPECS entry, config changes).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "qwen3_moe": ("qwen3_moe", {"mlp_only_layers": []}),
    "mistral": ("mistral", {"sliding_window": None}),
}
GPT2_VOCAB = {"phi3", "phi3_long"}  # the converter's input names GPT2Tokenizer
# q8_0 of MoE: quantised weights may tip a near-tie between experts; a step whose token is
# routed apart is not compared, and at most this share of steps may be.
MAX_REROUTED = 0.25


@pytest.fixture(scope="module")
def converter() -> Path:
    pytest.importorskip("sentencepiece", reason="llama.cpp's converter imports sentencepiece")
    return llamacpp_root() / "convert_hf_to_gguf.py"


@pytest.fixture(scope="module")
def gguf_family(
    make_family: Callable[[str], Family], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Family]:
    """The family's tiny checkpoint, or its variant llama.cpp can hold (one per module)."""
    made: dict[str, Family] = {}

    def make(name: str) -> Family:
        if name not in VARIANTS:
            return make_family(name)
        if name not in made:
            base, changes = VARIANTS[name]
            out = tmp_path_factory.mktemp(f"{name}-gguf")
            made[name] = Family(name, tiny.make_checkpoint(out, base, changes=changes))
        return made[name]

    return make


# One converter process writes every file (its imports, ~2 s, once): each job is run as the
# script would be, and a failed job is reported on stderr without stopping the others.
DRIVER = """
import runpy, sys, traceback
from pathlib import Path
script = sys.argv[1]
sys.path.insert(0, str(Path(script).parent))
for job in sys.argv[2:]:
    source, out, outtype = job.split("|")
    sys.argv = [script, source, "--outfile", out, "--outtype", outtype]
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            print(f"FAILED {job}: exit {exc.code}", file=sys.stderr)
    except Exception:
        print(f"FAILED {job}:", traceback.format_exc(), file=sys.stderr)
"""


def _converter_input(family: Family, out_dir: Path) -> Path:
    if family.name not in GPT2_VOCAB:
        return family.path
    source = out_dir / f"{family.name}-source"
    shutil.copytree(family.path, source, dirs_exist_ok=True)
    config = source / "tokenizer_config.json"
    tokenizer = json.loads(config.read_text()) | {"tokenizer_class": "GPT2Tokenizer"}
    config.write_text(json.dumps(tokenizer))
    return source


@pytest.fixture(scope="module")
def ggufs(
    converter: Path, gguf_family: Callable[[str], Family], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[tuple[str, str], Path], str]:
    """(name, outtype) -> the GGUF llama.cpp's converter wrote, and the converter's stderr."""
    out_dir = tmp_path_factory.mktemp("gguf")
    files = {job: out_dir / f"{job[0]}-{job[1]}.gguf" for job in JOBS}
    jobs = [
        f"{_converter_input(gguf_family(name), out_dir)}|{files[name, outtype]}|{outtype}"
        for name, outtype in JOBS
    ]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(converter), *jobs],
        capture_output=True,
        text=True,
        timeout=CONVERT_TIMEOUT_S,
    )
    return files, done.stderr


@pytest.mark.parametrize(("name", "outtype"), JOBS)
@torch.inference_mode()
def test_gguf_from_llama_cpp_converter_matches_transformers(
    name: str, outtype: str, gguf_family: Callable[[str], Family], ggufs
) -> None:
    family = gguf_family(name)
    files, converter_log = ggufs
    path = files[name, outtype]
    assert path.exists(), f"convert_hf_to_gguf.py wrote no {path.name}:\n{converter_log[-3000:]}"
    lm = load_model(str(path), dtype=torch.float32)
    assert type(lm.model) is type(family.fp32.model)
    assert lm.tokenizer.encode(PROMPT) == family.prompt  # their vocab writer, our reader
    ours = forced_steps(runner(lm), family.prompt, family.tokens)
    same = _routed_alike(lm, family)  # [steps]; all True for a dense family
    if outtype == "f32":
        assert same.all(), f"{name}: steps {(~same).nonzero().flatten().tolist()} rerouted"
    assert (~same).float().mean().item() <= MAX_REROUTED
    scale = family.logits.abs().amax(dim=-1)
    diff = (ours - family.logits).abs().amax(dim=-1) / scale
    worst = diff[same].max().item()
    assert worst <= TOLERANCE[outtype], f"{name} {outtype}: max |diff| / scale {worst:.2e}"
    top2 = family.logits.topk(2, dim=-1).values
    clear = same & ((top2[:, 0] - top2[:, 1]) > 2 * TOLERANCE[outtype] * scale)
    assert torch.equal(ours.argmax(-1)[clear], family.logits.argmax(-1)[clear])
    if outtype == "f32":  # free-running greedy, no teacher forcing: the very same tokens
        r = runner(lm)
        tokens = [int(r.prefill(0, family.prompt).argmax())]
        for i in range(GREEDY_TOKENS - 1):
            tokens.append(int(r.decode([0], [tokens[-1]], [len(family.prompt) + i])[0].argmax()))
        assert tokens == family.tokens


@torch.inference_mode()
def _routed_alike(lm: LoadedModel, family: Family) -> torch.Tensor:
    """Per greedy step: whether its token went to the same experts in every layer as in our
    fp32 model of the checkpoint (which routes as transformers does: test_family_parity)."""
    ids = family.prompt + family.tokens[:-1]
    steps = torch.arange(len(family.prompt) - 1, len(ids))
    routes = [_routes(lm, ids), _routes(family.fp32, ids)]
    same = torch.ones(len(steps), dtype=torch.bool)
    for ours, theirs in zip(*routes, strict=True):
        same &= (ours.sort(dim=-1).values == theirs.sort(dim=-1).values).all(dim=-1)[steps]
    return same


def _routes(lm: LoadedModel, ids: list[int]) -> list[torch.Tensor]:
    """Each MoE layer's expert ids [len(ids), k] over one prefill of `ids`."""
    routes: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: routes.append(out[1]))
        for m in lm.model.modules()
        if isinstance(m, Router)
    ]
    try:
        runner(lm).prefill(0, ids)
    finally:
        for h in hooks:
            h.remove()
    return routes


@pytest.mark.parametrize(
    ("arch", "fields", "says"),
    [
        ("phimoe", {}, "unsupported GGUF architecture 'phimoe'"),
        ("granitemoe", {"expert_shared_feed_forward_length": 32}, "'granitemoe' with shared"),
        ("phi3", {"rope.dimension_count": 8}, "'phi3' with partial rotary (8 of 16)"),
    ],
)
def test_gguf_of_what_no_family_serves_is_refused_naming_it(
    arch: str, fields: dict[str, int], says: str, tmp_path: Path
) -> None:
    path = tmp_path / f"{arch}.gguf"
    writer = GGUFWriter(str(path), arch)
    shapes = {"block_count": 2, "embedding_length": 64, "feed_forward_length": 128}
    shapes |= {"attention.head_count": 4, "vocab_size": 256, "expert_count": 8}
    for key, value in (shapes | fields).items():
        writer.add_uint32(f"{arch}.{key}", value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(UnsupportedArchitecture) as refused:
        load_model(str(path), dtype=torch.float32)
    assert says in str(refused.value)
