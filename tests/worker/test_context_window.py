"""The worker's one context-length rule (worker/context_window.py): the check before
tokenising and the one after agree at every boundary."""

from __future__ import annotations

import pytest

from worker.context_window import ContextWindow
from worker.errors import ContextLengthExceeded


def test_the_window_is_the_configured_bound_within_the_models() -> None:
    assert ContextWindow.of(2048, 8192).length == 2048
    assert ContextWindow.of(8192, 2048).length == 2048


@pytest.mark.parametrize("requested", [None, 0, 1, 10, 24])
@pytest.mark.parametrize("prompt", [1, 20, 31, 32, 40])
def test_the_size_check_and_max_tokens_apply_one_rule(prompt: int, requested) -> None:
    window = ContextWindow(32)
    fits = prompt + (requested or 1) <= 32
    try:
        window.check_size(prompt, 4 * prompt, requested)
        by_size = True
    except ContextLengthExceeded:
        by_size = False
    try:
        got = window.max_tokens(prompt, requested)
        by_count = True
    except ContextLengthExceeded as exc:
        by_count = False
        assert f"context length is 32 tokens; your prompt has {prompt} tokens" in exc.message
    assert by_size == by_count == fits
    if fits:
        assert got == (requested or 32 - prompt)


def test_the_engine_refuses_by_its_runners_window() -> None:
    from tests.worker.fakes import FakeRunner, FakeTokenizer  # noqa: PLC0415
    from worker.engine import LLMEngine  # noqa: PLC0415
    from worker.sampling_params import SamplingParams  # noqa: PLC0415

    engine = LLMEngine(FakeRunner(max_model_len=16), FakeTokenizer(), [0], thinking=False)
    assert engine.context_length == engine.window.length == 16
    seq = engine.add_request("a", list(range(1, 11)), SamplingParams())
    assert seq.max_tokens == 6  # the room left
    with pytest.raises(ContextLengthExceeded, match="maximum context length is 16"):
        engine.add_request("b", list(range(1, 11)), SamplingParams(max_tokens=7))
