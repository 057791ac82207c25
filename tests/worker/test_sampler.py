"""Sampler: greedy, top-k/top-p filtering, penalties, per-request seeded generators."""

from __future__ import annotations

import pytest
import torch

from worker.errors import InvalidRequest
from worker.sampler import Sampler, apply_repetition_penalty, apply_top_k_top_p
from worker.sampling_params import SamplingParams
from worker.sequence import Sequence


def _seq(request_id: str = "r", **params: object) -> Sequence:
    return Sequence(request_id, [1, 2, 3], SamplingParams(**params), max_tokens=16)


def _logits(batch: int, vocab: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, vocab, generator=torch.Generator().manual_seed(seed))


def test_greedy_is_argmax() -> None:
    logits = _logits(3)
    ids = Sampler(seed=0)(logits, [_seq(), _seq(), _seq()])
    assert ids == logits.argmax(-1).tolist()


def test_greedy_rows_stay_greedy_in_a_mixed_batch() -> None:
    logits = _logits(4)
    seqs = [_seq(), _seq(temperature=1.5), _seq(), _seq(temperature=1.0)]
    ids = Sampler(seed=0)(logits, seqs)
    assert ids[0] == logits[0].argmax() and ids[2] == logits[2].argmax()


def test_top_k_1_and_tiny_top_p_are_greedy() -> None:
    logits = _logits(2)
    seqs = [_seq(temperature=1.0, top_k=1), _seq(temperature=1.0, top_p=1e-6)]
    for _ in range(5):
        assert Sampler()(logits, seqs) == logits.argmax(-1).tolist()


def test_top_k_top_p_mask_shape_and_kept_tokens() -> None:
    logits = torch.tensor([[4.0, 3.0, 2.0, 1.0], [0.0, 0.0, 0.0, 10.0]])
    masked = apply_top_k_top_p(logits, top_k=[2, 0], top_p=[1.0, 0.5])
    assert torch.isfinite(masked[0]).tolist() == [True, True, False, False]
    assert torch.isfinite(masked[1]).tolist() == [False, False, False, True]
    assert masked[0, 0] == 4.0  # kept logits are unchanged, in their original places


def test_temperature_sampling_follows_the_distribution() -> None:
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]]))
    sampler, seq = Sampler(seed=0), _seq(temperature=1.0)
    counts = torch.bincount(torch.tensor([sampler(logits, [seq])[0] for _ in range(2000)]))
    freqs = counts.float() / 2000
    assert torch.allclose(freqs, torch.tensor([0.7, 0.2, 0.1]), atol=0.04)


def test_seeded_request_is_reproducible_whatever_its_neighbours() -> None:
    logits = _logits(1, vocab=1000)
    alone = [Sampler()(logits, [_seq(temperature=1.0, seed=42)])[0] for _ in range(1)]
    # a fresh sequence with the same seed, this time batched with unseeded and seeded others
    seqs = [
        _seq("a", temperature=1.0),
        _seq("b", temperature=1.0, seed=42),
        _seq("c", temperature=1.0, seed=7),
    ]
    batched = Sampler()(logits.expand(3, -1), seqs)
    assert batched[1] == alone[0]


def test_seeded_stream_repeats_over_many_steps() -> None:
    logits = _logits(1, vocab=500)

    def run() -> list[int]:
        seq, sampler = _seq(temperature=1.2, seed=3), Sampler()
        return [sampler(logits, [seq])[0] for _ in range(20)]

    assert run() == run()


def test_unseeded_requests_use_the_worker_generator() -> None:
    logits = _logits(1, vocab=1000)
    draws_a = [Sampler(seed=1)(logits, [_seq(temperature=1.0)])[0] for _ in range(5)]
    draws_b = [Sampler(seed=1)(logits, [_seq(temperature=1.0)])[0] for _ in range(5)]
    assert draws_a == draws_b  # same worker seed, same draws


def test_penalties_push_down_repeated_tokens() -> None:
    logits = torch.tensor([[2.0, 1.9, 0.0]])
    seq = _seq(frequency_penalty=0.5)
    seq.append_token(0)
    assert Sampler()(logits, [seq]) == [1]  # 2.0 - 0.5 < 1.9
    plain = _seq()
    plain.append_token(0)
    assert Sampler()(logits, [plain]) == [0]


def test_unset_temperature_and_top_p_take_the_models_defaults():
    from mesh.pb import common_pb2
    from worker.sampling_params import SamplingDefaults, SamplingParams

    defaults = SamplingDefaults(temperature=0.2, top_p=0.9)
    unset = SamplingParams.from_pb(common_pb2.SamplingParams(max_tokens=4), defaults)
    assert (unset.temperature, unset.top_p) == (0.2, 0.9)
    explicit = SamplingParams.from_pb(
        common_pb2.SamplingParams(temperature=0.0, top_p=1.0), defaults
    )
    assert (explicit.temperature, explicit.top_p) == (0.0, 1.0)


# -- agent API (#15): logit_bias, min_p, repetition_penalty, top_p 0, grammar, logprobs ------


class _AllowOnly:
    """A stand-in grammar matcher (unit test): allows only `allowed` token ids."""

    def __init__(self, allowed: list[int]) -> None:
        self.allowed = allowed

    def fill_bitmask(self, bitmask: torch.Tensor, row: int) -> None:
        from worker.grammar import allocate_bitmask

        words = allocate_bitmask(1, bitmask.shape[1] * 32)[0].zero_()
        for token_id in self.allowed:
            bit = 1 << (token_id % 32)
            words[token_id // 32] |= bit if bit < 2**31 else bit - 2**32
        bitmask[row] = words


def test_top_p_zero_is_greedy_even_with_temperature() -> None:
    logits = _logits(2, vocab=100)
    seqs = [_seq(temperature=1.5, top_p=0.0), _seq(temperature=1.5, top_p=0.0, seed=3)]
    for _ in range(5):
        assert Sampler()(logits, seqs) == logits.argmax(-1).tolist()


def test_logit_bias_moves_the_choice_and_ids_are_validated() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0]])
    assert Sampler()(logits, [_seq(logit_bias=((2, 5.0),))]) == [2]
    assert Sampler()(logits, [_seq(logit_bias=((0, -100.0),))]) == [1]
    for bad in (((1, 101.0),), ((-1, 1.0),)):
        with pytest.raises(InvalidRequest) as info:
            SamplingParams(logit_bias=bad)
        assert info.value.param == "logit_bias"


def test_min_p_drops_unlikely_tokens() -> None:
    # probabilities 0.6, 0.3, 0.1: min_p 0.4 keeps tokens with p >= 0.24 (0 and 1)
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1]]))
    sampler, seq = Sampler(seed=0), _seq(temperature=1.0, min_p=0.4)
    draws = {sampler(logits, [seq])[0] for _ in range(300)}
    assert draws == {0, 1}


def test_repetition_penalty_hf_semantics_over_prompt_and_output() -> None:
    logits = torch.tensor([[2.0, 1.8, -1.0, -1.1, 0.0]])
    seq = _seq(repetition_penalty=1.5)  # prompt [1, 2, 3]
    seq.append_token(0)
    out = logits.clone()
    apply_repetition_penalty(out, [seq])
    # positive logits divided, negative multiplied; token 4 (never seen) untouched
    assert torch.allclose(out, torch.tensor([[2.0 / 1.5, 1.8 / 1.5, -1.5, -1.65, 0.0]]))
    with pytest.raises(InvalidRequest) as info:
        SamplingParams(repetition_penalty=0.0)
    assert info.value.param == "repetition_penalty"


def test_grammar_mask_applies_to_greedy_and_random_rows_only_where_set() -> None:
    logits = _logits(3, vocab=64)
    free, greedy, sampled = _seq(), _seq(), _seq(temperature=1.0)
    greedy.matcher = _AllowOnly([5, 40])  # type: ignore[assignment]
    sampled.matcher = _AllowOnly([7])  # type: ignore[assignment]
    for _ in range(10):
        ids = Sampler()(logits, [free, greedy, sampled])
        assert ids[0] == logits[0].argmax()
        assert ids[1] == (5 if logits[1, 5] > logits[1, 40] else 40)
        assert ids[2] == 7


def test_logprobs_are_log_softmax_of_processed_logits_before_temperature() -> None:
    logits = _logits(2, vocab=50)
    asks = _seq(temperature=0.7, logprobs=True, top_logprobs=3, logit_bias=((4, 3.0),), seed=1)
    silent = _seq(temperature=0.7)
    ids, logprobs = Sampler().sample(logits, [asks, silent])
    processed = logits[0].clone()
    processed[4] += 3.0
    expected = torch.log_softmax(processed, dim=-1)
    entry = logprobs[0]
    assert logprobs[1] is None and entry is not None and entry.token_id == ids[0]
    assert entry.logprob == pytest.approx(expected[ids[0]].item(), abs=1e-5)
    top = expected.topk(3)
    assert [t for t, _ in entry.top] == top.indices.tolist()
    assert [lp for _, lp in entry.top] == pytest.approx(top.values.tolist(), abs=1e-5)


def test_top_logprobs_validation() -> None:
    for params, param in (
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"n": 0}, "n"),
        ({"n": 17}, "n"),
        ({"min_p": 1.5}, "min_p"),
    ):
        with pytest.raises(InvalidRequest) as info:
            SamplingParams(**params)
        assert info.value.param == param
