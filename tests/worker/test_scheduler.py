"""Continuous batching without a model: joins, leaves, aborts, chunked prefill."""

from __future__ import annotations

import pytest

from tests.worker.fakes import FakeRunner, FakeTokenizer
from worker.engine import LLMEngine, padding_groups
from worker.errors import ContextLengthExceeded, InvalidRequest
from worker.sampling_params import SamplingParams
from worker.scheduler import Scheduler
from worker.sequence import FinishReason, Sequence, SequenceStatus


def _seq(request_id: str, num_prompt: int = 4, max_tokens: int = 8, tenant: str = "") -> Sequence:
    return Sequence(request_id, list(range(num_prompt)), SamplingParams(), max_tokens, tenant)


def _engine(runner: FakeRunner | None = None, **kwargs: object) -> LLMEngine:
    runner = runner or FakeRunner()
    return LLMEngine(runner, FakeTokenizer(), FakeTokenizer.eos_token_ids, **kwargs)  # type: ignore[arg-type]


def _drain(engine: LLMEngine, max_steps: int = 200) -> dict[str, str]:
    texts: dict[str, str] = {}
    for _ in range(max_steps):
        if not engine.has_unfinished():
            break
        for out in engine.step():
            texts[out.request_id] = texts.get(out.request_id, "") + out.text
    return texts


def test_waiting_sequences_join_running_ones_between_steps() -> None:
    scheduler = Scheduler(num_slots=4, max_prefill_tokens=64)
    scheduler.add(_seq("a"))
    first = scheduler.schedule()
    assert [c.seq.request_id for c in first.prefills] == ["a"] and not first.decodes
    first.prefills[0].seq.num_computed = 4
    scheduler.add(_seq("b"))
    second = scheduler.schedule()
    assert [s.request_id for s in second.decodes] == ["a"]
    assert [c.seq.request_id for c in second.prefills] == ["b"]


def test_no_more_running_than_slots() -> None:
    scheduler = Scheduler(num_slots=2, max_prefill_tokens=64)
    for name in "abc":
        scheduler.add(_seq(name))
    batch = scheduler.schedule()
    assert len(batch.prefills) == 2 and scheduler.num_waiting == 1


def test_chunked_prefill_respects_the_token_budget() -> None:
    runner = FakeRunner(num_slots=4, max_model_len=256)
    engine = _engine(runner, max_prefill_tokens=16)
    engine.add_request("long", list(range(40)), SamplingParams(max_tokens=2))
    engine.add_request("short", list(range(5)), SamplingParams(max_tokens=2))
    steps = []
    while engine.has_unfinished():
        before = len(runner.prefills)
        engine.step()
        steps.append(sum(n for _, _, n in runner.prefills[before:]))
    assert max(steps) <= 16
    assert [p for p in runner.prefills if p[0] == runner.prefills[0][0]][:3] == [
        (0, 0, 16),
        (0, 16, 16),
        (0, 32, 8),
    ]


def test_long_prompt_does_not_stall_running_streams() -> None:
    runner = FakeRunner(num_slots=4, max_model_len=256)
    engine = _engine(runner, max_prefill_tokens=16)
    engine.add_request("running", [1, 2], SamplingParams(max_tokens=20))
    engine.step()  # prefill "running"
    engine.add_request("long", list(range(100)), SamplingParams(max_tokens=1))
    for _ in range(6):  # the long prompt needs 7 chunks; "running" decodes every step
        before = len(runner.decodes)
        engine.step()
        assert len(runner.decodes) == before + 1


def test_finished_sequences_leave_and_free_their_slot() -> None:
    engine = _engine(max_prefill_tokens=64)
    engine.add_request("a", [1], SamplingParams(max_tokens=3))
    engine.add_request("b", [1], SamplingParams(max_tokens=6))
    texts = _drain(engine)
    assert texts == {"a": "cde", "b": "cdefgh"}
    assert engine.scheduler.num_running == 0 and engine.scheduler.slots.num_free == 4


def test_abort_frees_the_slot_within_one_step() -> None:
    runner = FakeRunner()
    engine = _engine(runner)
    engine.add_request("a", [1], SamplingParams(max_tokens=50))
    engine.add_request("b", [1], SamplingParams(max_tokens=50))
    engine.step()
    engine.step()
    engine.abort("a")
    outputs = engine.step()
    assert engine.scheduler.slots.num_free == 3
    assert [o.finish_reason for o in outputs if o.request_id == "a"] == [FinishReason.CANCELLED]
    assert runner.decodes[-1] == [1]  # only "b" decoded
    assert engine.stats.num_cancelled_total == 1


def test_abort_of_a_waiting_sequence() -> None:
    scheduler = Scheduler(num_slots=1, max_prefill_tokens=64)
    scheduler.add(_seq("a"))
    scheduler.add(_seq("b"))
    scheduler.schedule()
    seq = scheduler.abort("b")
    assert seq is not None and seq.status is SequenceStatus.FINISHED and scheduler.num_waiting == 0


def test_eos_finishes_with_stop() -> None:
    engine = _engine()
    engine.add_request("a", [60], SamplingParams(max_tokens=10))
    outputs = [o for _ in range(3) for o in engine.step()]
    assert outputs[-1].finish_reason is FinishReason.STOP
    assert outputs[-1].usage is not None and outputs[-1].usage.completion_tokens == 3


def test_context_window_check_happens_before_queueing() -> None:
    engine = _engine(FakeRunner(max_model_len=32))
    with pytest.raises(
        ContextLengthExceeded,
        match="maximum context length is 32 tokens; your prompt has 30 tokens and max_tokens asks for 5",
    ) as info:
        engine.add_request("a", list(range(30)), SamplingParams(max_tokens=5))
    assert info.value.param == "max_tokens"
    assert not engine.has_unfinished()


def test_max_tokens_unset_means_up_to_the_context_window() -> None:
    engine = _engine(FakeRunner(max_model_len=32))
    seq = engine.add_request("a", list(range(30)), SamplingParams(ignore_eos=True))
    assert seq.max_tokens == 2


def test_empty_prompt_is_rejected() -> None:
    with pytest.raises(InvalidRequest):
        _engine().add_request("a", "", SamplingParams())


def test_prefix_of_a_finished_sequence_is_reused_for_the_same_tenant_only() -> None:
    runner = FakeRunner()
    engine = _engine(runner)
    prompt = list(range(20))
    engine.add_request("a", prompt, SamplingParams(max_tokens=1), tenant="t1")
    _drain(engine)
    engine.add_request("b", prompt, SamplingParams(max_tokens=1), tenant="t2")
    engine.add_request("c", prompt, SamplingParams(max_tokens=1), tenant="t1")
    _drain(engine)
    starts = {p[1] for p in runner.prefills[1:]}
    assert starts == {0, 19}  # t2 recomputes everything; t1 only the last prompt token
    assert engine.stats.num_prefix_cache_hits_total == 1


def test_a_burst_of_prompts_is_prefilled_in_one_forward() -> None:
    runner = FakeRunner(num_slots=16, max_model_len=256)
    engine = _engine(runner, max_prefill_tokens=2048)
    for i in range(16):
        engine.add_request(
            f"r{i}", [i % 26] + list(range(120 + i % 5)), SamplingParams(max_tokens=2)
        )
    outputs = engine.step()
    assert runner.prefill_batches == [list(range(16))]  # one forward, every prompt whole
    assert sorted(o.request_id for o in outputs) == sorted(f"r{i}" for i in range(16))
    assert all(o.num_tokens == 1 for o in outputs)


def test_the_step_budget_still_bounds_a_burst() -> None:
    runner = FakeRunner(num_slots=16, max_model_len=256)
    engine = _engine(runner, max_prefill_tokens=100)
    for i in range(4):  # distinct first tokens: no prefix reuse
        engine.add_request(f"r{i}", [i] + list(range(39)), SamplingParams(max_tokens=1))
    engine.step()
    assert runner.prefills == [(0, 0, 40), (1, 0, 40), (2, 0, 20)]
    engine.step()  # the split prompt goes on first, then the next one
    assert runner.prefills[3:] == [(2, 20, 20), (3, 0, 40)]


def test_long_prompt_is_chunked_only_while_others_decode() -> None:
    runner = FakeRunner(num_slots=4, max_model_len=256)
    engine = _engine(runner, max_prefill_tokens=128, max_prefill_chunk=16)
    engine.add_request("alone", list(range(100)), SamplingParams(max_tokens=30))
    engine.step()
    assert runner.prefills == [(0, 0, 100)]  # nobody to stall: one step
    # another first token: nothing to reuse from "alone"
    engine.add_request("long", [7] + list(range(99)), SamplingParams(max_tokens=1))
    for _ in range(3):
        engine.step()
    assert runner.prefills[1:] == [(1, 0, 16), (1, 16, 16), (1, 32, 16)]
    assert len(runner.decodes) == 3


def test_prompts_of_very_different_lengths_do_not_pad_each_other() -> None:
    runner = FakeRunner(num_slots=4, max_model_len=1024)
    engine = _engine(runner, max_prefill_tokens=1024)
    engine.add_request("long", list(range(600)), SamplingParams(max_tokens=1))
    engine.add_request("short", list(range(10)), SamplingParams(max_tokens=1))
    engine.add_request("short2", list(range(12)), SamplingParams(max_tokens=1))
    texts = _drain(engine)
    assert runner.prefill_batches == [[0], [1, 2]]
    assert set(texts) == {"long", "short", "short2"}


@pytest.mark.parametrize(
    ("lengths", "groups"),
    [
        ([132, 120, 140, 68], [[0, 1, 2, 3]]),
        ([600, 10, 12], [[0], [1, 2]]),
        ([10, 600, 500, 12], [[1, 2], [0, 3]]),
        ([1], [[0]]),
    ],
)
def test_padding_groups(lengths: list[int], groups: list[list[int]]) -> None:
    assert padding_groups(lengths) == groups


def test_a_running_sequences_prefix_is_copied_for_the_same_tenant_only() -> None:
    runner = FakeRunner(num_slots=4, max_model_len=256)
    engine = _engine(runner)
    system = list(range(30))  # a shared system prompt
    engine.add_request("a", [*system, 40, 41], SamplingParams(max_tokens=20), tenant="t1")
    engine.step()  # a's prompt is in slot 0; a keeps decoding, so no slot is free-and-cached
    engine.add_request("b", [*system, 50, 51, 52], SamplingParams(max_tokens=1), tenant="t1")
    engine.add_request("c", [*system, 50], SamplingParams(max_tokens=1), tenant="t2")
    engine.step()
    assert runner.copies == [(0, 1, 30)]  # into b's slot, before the forward
    assert (1, 30, 3) in runner.prefills  # b computes only its own three tokens
    assert (2, 0, 31) in runner.prefills  # another tenant's prefix is never shared
    assert engine.stats.num_prefix_cache_hits_total == 1


def test_a_prefix_kept_in_place_is_not_copied_again() -> None:
    runner = FakeRunner(num_slots=2, max_model_len=256)
    engine = _engine(runner)
    engine.add_request("a", list(range(30)), SamplingParams(max_tokens=1))
    _drain(engine)
    engine.add_request("b", [*range(30), 7], SamplingParams(max_tokens=1))
    _drain(engine)
    assert runner.copies == [] and runner.prefills[-1] == (0, 30, 1)  # a's slot, in place
