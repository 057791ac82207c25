"""ModelRunner: batched decode, chunked prefill and prefix copy equal the one-at-a-time paths."""

from __future__ import annotations

import pytest
import torch

ATOL = 1e-4


def prompts(lm, n: int) -> list[list[int]]:
    texts = ["The sea is", "Once upon a time in a land far away, there", "12345 + 678 = 99"][:n]
    return [lm.tokenizer.encode(t) for t in texts]


def decode_alone(lm, make_runner, prompt: list[int], next_token: int) -> torch.Tensor:
    runner = make_runner(lm, max_num_seqs=1)
    runner.prefill(0, prompt)
    return runner.decode([0], [next_token], [len(prompt)])[0]


@pytest.mark.parametrize("slots", [[3, 0, 2], [1, 2, 3]])  # gathered and contiguous slots
def test_batched_decode_matches_single(tiny_model, make_runner, slots) -> None:
    ps = prompts(tiny_model, 3)
    assert len({len(p) for p in ps}) == 3  # different lengths
    runner = make_runner(tiny_model, max_num_seqs=4)
    for slot, p in zip(slots, ps, strict=True):
        runner.prefill(slot, p)
    nxt = [7, 11, 13]
    batched = runner.decode(slots, nxt, [len(p) for p in ps])
    assert batched.shape == (3, tiny_model.config.vocab_size) and batched.dtype == torch.float32
    for i, p in enumerate(ps):
        torch.testing.assert_close(
            batched[i], decode_alone(tiny_model, make_runner, p, nxt[i]), atol=ATOL, rtol=0
        )
    # A second step still agrees (the first step's KV landed in the right slot/position).
    second = runner.decode(slots, [5, 5, 5], [len(p) + 1 for p in ps])
    ref = make_runner(tiny_model, max_num_seqs=1)
    ref.prefill(0, ps[1] + [nxt[1]])
    torch.testing.assert_close(
        second[1], ref.decode([0], [5], [len(ps[1]) + 1])[0], atol=ATOL, rtol=0
    )


def test_chunked_prefill_matches_one_shot(tiny_model, make_runner) -> None:
    p = prompts(tiny_model, 2)[1]
    one = make_runner(tiny_model, max_num_seqs=2)
    full = one.prefill(1, p)
    chunked = make_runner(tiny_model, max_num_seqs=2)
    chunked.prefill(0, p[:4])
    torch.testing.assert_close(chunked.prefill(0, p[4:], start_pos=4), full, atol=ATOL, rtol=0)
    n = len(p)
    torch.testing.assert_close(
        chunked.k_cache[:, 0, :, :n], one.k_cache[:, 1, :, :n], atol=ATOL, rtol=0
    )


def test_copy_prefix_then_prefill_rest(tiny_model, make_runner) -> None:
    p = prompts(tiny_model, 2)[1]
    runner = make_runner(tiny_model, max_num_seqs=3)
    full = runner.prefill(0, p)
    runner.copy_prefix(0, 2, 5)
    torch.testing.assert_close(runner.prefill(2, p[5:], start_pos=5), full, atol=ATOL, rtol=0)


def test_rejects_out_of_range(tiny_model, make_runner) -> None:
    runner = make_runner(tiny_model, max_num_seqs=2, max_model_len=8)
    with pytest.raises(ValueError):
        runner.prefill(2, [1, 2])
    with pytest.raises(ValueError):
        runner.prefill(0, list(range(9)))
    with pytest.raises(ValueError):
        runner.decode([0, 0], [1, 2], [0, 1])


def test_prefill_batch_matches_single_prefills(tiny_model, make_runner) -> None:
    # Different lengths (padded rows) and one chunk continuing at start_pos > 0.
    ps = prompts(tiny_model, 3)
    single = make_runner(tiny_model, max_num_seqs=4)
    single.prefill(3, ps[2][:3])
    expected = [single.prefill(0, ps[0]), single.prefill(1, ps[1]), single.prefill(3, ps[2][3:], 3)]
    batched = make_runner(tiny_model, max_num_seqs=4)
    batched.prefill(2, ps[2][:3])
    logits = batched.prefill_batch([0, 1, 2], [ps[0], ps[1], ps[2][3:]], [0, 0, 3])
    assert logits.shape == (3, tiny_model.config.vocab_size) and logits.dtype == torch.float32
    for i in range(3):
        torch.testing.assert_close(logits[i], expected[i], atol=ATOL, rtol=0)
    for got, want in ((0, 0), (1, 1), (2, 3)):  # KV written only for real tokens
        n = len(ps[got]) if got < 2 else len(ps[2])
        torch.testing.assert_close(
            batched.k_cache[:, got, :, :n], single.k_cache[:, want, :, :n], atol=ATOL, rtol=0
        )
        assert not batched.k_cache[:, got, :, n:].any()  # padding wrote nothing past the end


def test_prefill_batch_equal_lengths_uses_causal_path(tiny_model, make_runner) -> None:
    ps = [prompts(tiny_model, 2)[1]] * 2
    runner = make_runner(tiny_model, max_num_seqs=2)
    logits = runner.prefill_batch([1, 0], ps, [0, 0])
    torch.testing.assert_close(logits[0], logits[1], atol=ATOL, rtol=0)
    torch.testing.assert_close(
        logits[0], make_runner(tiny_model).prefill(0, ps[0]), atol=ATOL, rtol=0
    )
