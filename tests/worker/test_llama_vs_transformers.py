"""Correctness proof: our Llama (prefill + batched-decode path) against transformers' Llama
built from the same config and the same weights, in fp32."""

from __future__ import annotations

import pytest
import torch
import transformers

from worker.loader import unpermute_rope
from worker.models.llama import internal_to_hf

PROMPT = [{"role": "user", "content": "Write one sentence about the sea."}]
GREEDY_STEPS = 20


def hf_reference(lm) -> transformers.PreTrainedModel:
    """transformers' Llama (or Qwen2) with our config and our weights (renamed to HF names)."""
    cfg = lm.config.to_hf_dict()
    cfg.pop("architectures")
    hf_cfg = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    with torch.device("meta"):
        ref = transformers.AutoModelForCausalLM.from_config(hf_cfg)
    state = internal_to_hf(lm.model)
    if lm.config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    ref.load_state_dict(state, strict=True, assign=True)
    # rotary inv_freq is a non-persistent buffer: rebuild it on the CPU from the config.
    with torch.device("cpu"):
        ref.model.rotary_emb = type(ref.model.rotary_emb)(hf_cfg)
    return ref.float().eval()


def greedy_with_runner(runner, prompt_ids: list[int], steps: int) -> tuple[list[int], torch.Tensor]:
    """Greedy tokens from our prefill + decode, and the logits that chose each one [steps, V]."""
    logits = [runner.prefill(0, prompt_ids)]
    tokens = [int(logits[-1].argmax())]
    # Decode in slot 2 of a batch with an unrelated row, so batching is exercised too.
    runner.prefill(1, prompt_ids[:5])
    for i in range(steps - 1):
        pos = len(prompt_ids) + i
        out = runner.decode([1, 0], [tokens[-1], tokens[-1]], [5 + i, pos])
        logits.append(out[1])
        tokens.append(int(out[1].argmax()))
    return tokens, torch.stack(logits)


def assert_logits_close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    # ours/ref: [N, V]. Tolerance relative to the logit scale; top-1 must agree unless near-tied.
    scale = ref.abs().max().item()
    diff = (ours - ref).abs().max().item()
    assert diff <= 1e-3 * max(scale, 1.0), f"max |diff| {diff:.2e} at logit scale {scale:.1f}"
    top2 = ref.topk(2, dim=-1).values
    clear = (top2[:, 0] - top2[:, 1]) > 1e-3 * max(scale, 1.0)
    assert torch.equal(ours.argmax(-1)[clear], ref.argmax(-1)[clear])


@pytest.fixture(params=["smollm2", "tiny_model", "tiny_qwen_like_model"])
def loaded(request):
    return request.getfixturevalue(request.param)


@torch.inference_mode()
def test_prefill_and_greedy_decode_match_transformers(loaded, make_runner) -> None:
    ref = hf_reference(loaded)
    prompt, _ = loaded.tokenizer.render_chat(PROMPT)
    runner = make_runner(loaded, max_num_seqs=3)
    tokens, ours = greedy_with_runner(runner, prompt, GREEDY_STEPS)
    # One teacher-forced HF forward over prompt + our tokens gives the reference at every step.
    full = torch.tensor([prompt + tokens])
    ref_logits = ref(full).logits[0, len(prompt) - 1 : len(prompt) - 1 + GREEDY_STEPS].float()
    assert_logits_close(ours[:1], ref_logits[:1])  # last prompt position (prefill)
    assert_logits_close(ours, ref_logits)  # every greedy step (decode path)


@torch.inference_mode()
def test_smollm2_chat_is_coherent(smollm2, make_runner) -> None:
    # Catches wrong GGUF Q/K row order: logits would still match HF (same weights) but be garbage.
    tok = smollm2.tokenizer
    prompt, _ = tok.render_chat([{"role": "user", "content": "What is the capital of France?"}])
    runner = make_runner(smollm2, max_num_seqs=1)
    logits, out = runner.prefill(0, prompt), []
    for pos in range(len(prompt), len(prompt) + 16):
        out.append(int(logits.argmax()))
        if out[-1] in smollm2.eos_token_ids:
            break
        logits = runner.decode([0], [out[-1]], [pos])[0]
    assert "Paris" in tok.decode(out)


def test_unpermute_rope_inverts_llama_cpp_permute() -> None:
    def permute(w: torch.Tensor, n_head: int) -> torch.Tensor:  # convert_hf_to_gguf.py
        return (
            w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2)
            .reshape(w.shape)
        )

    w = torch.randn(3 * 8, 5)
    assert torch.equal(unpermute_rope(permute(w, 3), 3), w)
    assert not torch.equal(permute(w, 3), w)
