"""Sampler: greedy, top-k/top-p filtering, penalties, per-request seeded generators."""

from __future__ import annotations

import torch

from worker.sampler import Sampler, apply_top_k_top_p
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
