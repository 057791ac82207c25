"""A multimodal Gemma 3 checkpoint (Gemma3ForConditionalGeneration: language model under
`language_model.*`, a vision tower beside it) serves its text part: the same greedy tokens
as transformers' model on text-only input."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

from tests.worker.families.test_family_parity import runner
from tests.worker.families.tiny import GREEDY_TOKENS, PROMPT, SHAPES, SPECS, _tokenizer, hf_greedy
from worker.loader import load_model

TINY_VISION = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
    image_size=28, patch_size=14,
)  # fmt: skip


def make_multimodal(out: Path) -> Path:
    out.mkdir(parents=True)
    tokenizer = _tokenizer()
    tokenizer.save_hf(out)
    text = SHAPES | SPECS["gemma3"].config | {"vocab_size": tokenizer.vocab_size}
    config = transformers.Gemma3Config(
        text_config=text,
        vision_config=TINY_VISION,
        mm_tokens_per_image=4,
        image_token_index=5,
        boi_token_index=6,
        eoi_token_index=7,
    )
    torch.manual_seed(3)
    model = transformers.Gemma3ForConditionalGeneration(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(
                0.1 * torch.randn_like(p) if name.endswith("norm.weight") else p.normal_(0, 0.08)
            )
    model.save_pretrained(out)
    return out


@torch.inference_mode()
def test_gemma3_for_conditional_generation_serves_its_language_model(tmp_path: Path) -> None:
    path = make_multimodal(tmp_path / "gemma3-mm")
    ref = transformers.Gemma3ForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    lm = load_model(str(path), dtype=torch.float32)
    prompt = lm.tokenizer.encode(PROMPT)
    want, _ = hf_greedy(ref.eval(), prompt, GREEDY_TOKENS)
    r = runner(lm)
    tokens = [int(r.prefill(0, prompt).argmax())]
    for i in range(GREEDY_TOKENS - 1):
        tokens.append(int(r.decode([0], [tokens[-1]], [len(prompt) + i])[0].argmax()))
    assert tokens == want
