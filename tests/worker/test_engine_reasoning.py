"""The engine splits a thinking model's `<think>…</think>` from the answer, per sequence:
reasoning text and tokens apart, stop strings matched on the answer only."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from tests.worker.fakes import FakeRunner
from worker.engine import LLMEngine, detect_thinking
from worker.outputs import Usage
from worker.sampling_params import SamplingParams
from worker.sequence import FinishReason

# FakeRunner predicts (last token + 1): a prompt ending in token 0 generates 1, 2, 3, ...
PIECES = ["<think>", "plan", " more", "</think>", "Answer", " STOP", " tail", " end"] + ["."] * 56
EOS = 63


class PieceTokenizer:
    """Token id i is PIECES[i]; the vocabulary has the think markers."""

    chat_template = None

    def encode(self, text: str) -> list[int]:
        return [PIECES.index(text)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return "".join(PIECES[i] for i in ids)

    def render_chat(self, messages: list[dict], add_generation_prompt: bool = True):
        return [PIECES.index(m["content"]) for m in messages], 0


def _run(
    prompt: list[int], max_tokens: int, stop: tuple[str, ...] = (), thinking: bool | None = True
):
    engine = LLMEngine(FakeRunner(), PieceTokenizer(), (EOS,), thinking=thinking)  # type: ignore[arg-type]
    engine.add_request("r", prompt, SamplingParams(temperature=0, max_tokens=max_tokens, stop=stop))
    text, reasoning, usage, finish = "", "", None, None
    for _ in range(50):
        if not engine.has_unfinished():
            break
        for out in engine.step():
            text += out.text
            reasoning += out.reasoning_text
            usage, finish = out.usage or usage, out.finish_reason or finish
    assert isinstance(usage, Usage)
    return text, reasoning, usage, finish


def test_prompt_that_opens_think_starts_in_reasoning():
    text, reasoning, usage, finish = _run([0], max_tokens=5)  # plan, more, </think>, Answer, STOP
    assert reasoning == "plan more"
    assert text == "Answer STOP"
    assert (usage.completion_tokens, usage.reasoning_tokens) == (5, 3)  # the marker is reasoning
    assert finish is FinishReason.LENGTH


def test_ending_inside_think_is_all_reasoning():
    text, reasoning, usage, _ = _run([0], max_tokens=2)
    assert (text, reasoning) == ("", "plan more")
    assert usage.reasoning_tokens == usage.completion_tokens == 2


def test_stop_strings_match_the_answer_only():
    # "more" is in the reasoning: it does not stop; " STOP" in the answer does.
    text, reasoning, usage, finish = _run([0], max_tokens=7, stop=("more", " STOP"))
    assert reasoning == "plan more" and text == "Answer"
    assert finish is FinishReason.STOP and usage.reasoning_tokens == 3


def test_prompt_without_an_open_think_is_all_answer():
    text, reasoning, usage, _ = _run([3], max_tokens=3)  # after "</think>": Answer, STOP, tail
    assert (text, reasoning, usage.reasoning_tokens) == ("Answer STOP tail", "", 0)


def test_non_thinking_engine_passes_markers_through():
    text, reasoning, usage, _ = _run([0], max_tokens=4, thinking=False)
    assert text == "plan more</think>Answer" and reasoning == "" and usage.reasoning_tokens == 0


@pytest.mark.parametrize(
    ("vocab", "template", "expected"),
    [
        ({"<think>": 1, "</think>": 2}, None, True),
        ({"a": 1}, "{{ '<think>' }}", True),
        ({"a": 1}, "{{ messages }}", False),
    ],
)
def test_detect_thinking(vocab, template, expected):
    class Tok:
        def get_vocab(self, with_added_tokens: bool = True):
            return vocab

    class T:
        tok = Tok()
        chat_template = template

    assert detect_thinking(T()) is expected
