"""Every family against transformers on the same tiny random checkpoint (written by
transformers at test time): greedy tokens through our prefill + batched decode equal
`generate`'s in float32 (32 tokens), prefix reuse gives the same logits, bf16 logits stay
within a stated tolerance, the int4 decode linears run, and MoE routing picks the same
experts for every token in every layer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from tests.worker.families.tiny import GREEDY_TOKENS, SPECS, Family
from worker.layers.mlp import Router
from worker.loader import LoadedModel, load_model
from worker.model_runner import ModelRunner

# bf16 (weights, activations, KV cache) against transformers in fp32: max |diff| of every
# greedy step's logits, relative to the step's largest logit.
BF16_TOLERANCE = 0.05
# ...except in MoE families, where a near tie in a random router flips an expert in bf16 on
# the odd token (qwen3_moe: one step of 32 at 0.09, the rest under 0.03): a few steps may
# exceed it, none by much.
MOE_FLIPPED_STEPS, MOE_FLIP_TOLERANCE = 2, 0.2
# int4 decode linears (groups of 32) on random Gaussian weights, which quantise worse than
# trained ones: every step's logits keep this cosine with the fp32 reference (miswired
# weights or a wrong expert score near 0).
INT4_MIN_COSINE = 0.9


@pytest.fixture(scope="module", params=list(SPECS))
def family(request, make_family: Callable[[str], Family]) -> Family:
    return make_family(request.param)


def runner(lm: LoadedModel, slots: int = 3) -> ModelRunner:
    dtype = next(lm.model.parameters()).dtype
    return ModelRunner(
        lm.model, lm.config, max_num_seqs=slots, max_model_len=128, dtype=dtype, device="cpu",
        kernels=lm.kernels,
    )  # fmt: skip


@torch.inference_mode()
def forced_steps(r: ModelRunner, prompt: list[int], tokens: list[int]) -> torch.Tensor:
    """Logits [len(tokens), V] of prefill then decode steps fed `tokens` (teacher forcing),
    decoding in a batch beside an unrelated row so the batched path is what is checked."""
    logits = [r.prefill(0, prompt)]
    other = prompt[3:9]
    r.prefill(1, other)
    for i, tok in enumerate(tokens[:-1]):
        out = r.decode([1, 0], [tok, tok], [len(other) + i, len(prompt) + i])
        logits.append(out[1])
    return torch.stack(logits)


@torch.inference_mode()
def test_greedy_tokens_match_transformers_generate(family: Family) -> None:
    r = runner(family.fp32)
    logits = [r.prefill(0, family.prompt)]
    tokens = [int(logits[-1].argmax())]
    r.prefill(1, family.prompt[:5])  # a second sequence decoding in the same batches
    for i in range(GREEDY_TOKENS - 1):
        out = r.decode([1, 0], [tokens[-1], tokens[-1]], [5 + i, len(family.prompt) + i])
        tokens.append(int(out[1].argmax()))
    assert tokens == family.tokens, family.name


@torch.inference_mode()
def test_fp32_logits_match_and_prefix_reuse_is_exact(family: Family) -> None:
    ours = forced_steps(runner(family.fp32), family.prompt, family.tokens)
    scale = family.logits.abs().max().item()
    assert (ours - family.logits).abs().max().item() <= 1e-3 * max(scale, 1.0)
    # A second sequence sharing the prompt's first 9 tokens: KV copied, the rest prefilled.
    r = runner(family.fp32)
    full = r.prefill(0, family.prompt)
    r.copy_prefix(0, 2, 9)
    reused = r.prefill(2, family.prompt[9:], start_pos=9)
    assert torch.allclose(reused, full, atol=1e-4, rtol=0), family.name


@pytest.fixture(scope="module")
def bf16(family: Family) -> LoadedModel:
    return load_model(str(family.path), dtype=torch.bfloat16, quant="none")


@torch.inference_mode()
def test_bf16_logits_within_tolerance(family: Family, bf16: LoadedModel) -> None:
    ours = forced_steps(runner(bf16), family.prompt, family.tokens)
    diff = (ours - family.logits).abs().amax(dim=-1)
    scale = family.logits.abs().amax(dim=-1)
    relative = diff / scale
    if SPECS[family.name].moe_router is not None:
        over = int((relative > BF16_TOLERANCE).sum())
        assert over <= MOE_FLIPPED_STEPS, f"{family.name}: {over} steps over {BF16_TOLERANCE}"
        assert relative.max().item() <= MOE_FLIP_TOLERANCE, family.name
        return
    worst = relative.max().item()
    assert worst <= BF16_TOLERANCE, f"{family.name}: max |diff| / scale {worst:.3f}"


@torch.inference_mode()
def test_int4_decode_linears_run_every_family(family: Family) -> None:
    # The CPU default for bf16 (int4 linears, int8 head): the same forward, quantised weights.
    lm = load_model(str(family.path), dtype=torch.bfloat16, quant="int4")
    ours = forced_steps(runner(lm), family.prompt, family.tokens[:8])
    ref = family.logits[:8]
    cos = torch.nn.functional.cosine_similarity(ours, ref, dim=-1)
    assert cos.min().item() >= INT4_MIN_COSINE, f"{family.name}: cosine {cos.min().item():.3f}"


@torch.inference_mode()
def test_moe_routing_matches_transformers_expert_for_expert(family: Family) -> None:
    router_name = SPECS[family.name].moe_router
    if router_name is None:
        pytest.skip(f"{family.name} is dense")
    ids = family.prompt + family.tokens
    ours: list[torch.Tensor] = []
    theirs: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: ours.append(out[1]))
        for m in family.fp32.model.modules()
        if isinstance(m, Router)
    ]
    for layer in family.ref.model.layers:
        module = layer.get_submodule(router_name) if _has(layer, router_name) else None
        if module is not None:
            hooks.append(module.register_forward_hook(lambda _m, _i, out: theirs.append(out[2])))
    try:
        runner(family.fp32).prefill(0, ids)
        family.ref(torch.tensor([ids]))
    finally:
        for h in hooks:
            h.remove()
    assert len(ours) == len(theirs) > 0
    for layer, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        a, b = a.sort(dim=-1).values, b.reshape(a.shape).sort(dim=-1).values
        assert torch.equal(a, b), f"{family.name}: layer {layer} routed differently"


def _has(module: torch.nn.Module, name: str) -> bool:
    try:
        module.get_submodule(name)
    except AttributeError:
        return False
    return True
