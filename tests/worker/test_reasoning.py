"""Think-marker splitting, reasoning token counts, and what a reasoning answer costs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mesh.pricing import cost_from_usage
from worker.reasoning import (
    ReasoningSplitter,
    is_thinking_model,
    prompt_opens_think,
)


def _run(deltas: list[str], **kw) -> tuple[str, str, ReasoningSplitter]:
    sp = ReasoningSplitter(**kw)
    reasoning, answer = [], []
    for d in deltas:
        r, a = sp.feed(d, 1)
        reasoning.append(r)
        answer.append(a)
    r, a = sp.flush()
    return "".join(reasoning) + r, "".join(answer) + a, sp


def test_one_token_per_marker() -> None:
    deltas = ["<think>", "\n", "Let", " me", " think", "\n", "</think>", "\n\n", "Hi", "!"]
    reasoning, answer, sp = _run(deltas)
    assert (reasoning, answer) == ("Let me think\n", "Hi!")
    assert sp.reasoning_tokens == 7 and sp.answer_tokens == 3
    assert sp.reasoning_tokens + sp.answer_tokens == len(deltas)


@pytest.mark.parametrize("cut", range(1, 30))
def test_markers_split_anywhere(cut: int) -> None:
    text = "<think>plan: add</think>The answer is 4."
    reasoning, answer, _ = _run([text[:cut], text[cut:]])
    assert (reasoning, answer) == ("plan: add", "The answer is 4.")


def test_character_by_character() -> None:
    text = "<think>a<b</thin c</think>x < y <thinker"
    reasoning, answer, sp = _run(list(text))
    assert reasoning == "a<b</thin c"
    assert answer == "x < y <thinker"  # a held partial marker is released as text
    assert sp.reasoning_tokens + sp.answer_tokens == len(text)


def test_no_markers_passes_through() -> None:
    reasoning, answer, sp = _run(["Hello", " world", " <", "b>"])
    assert (reasoning, answer) == ("", "Hello world <b>")
    assert sp.reasoning_tokens == 0 and sp.answer_tokens == 4


def test_unclosed_think_at_max_tokens_is_all_reasoning() -> None:
    reasoning, answer, sp = _run(["<think>", "step", " one", " </th"])
    assert answer == ""
    assert reasoning == "step one </th"
    assert sp.reasoning_tokens == 4 and sp.answer_tokens == 0


def test_prompt_already_opened_think() -> None:
    assert prompt_opens_think("<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_think("<think>\n\n</think>\n\n")
    reasoning, answer, sp = _run(["hmm", "</think>", "ok"], start_in_reasoning=True)
    assert (reasoning, answer) == ("hmm", "ok")
    assert sp.reasoning_tokens == 2 and sp.answer_tokens == 1


def test_is_thinking_model() -> None:
    assert is_thinking_model({"<think>": 1, "</think>": 2, "a": 3}, None)
    assert is_thinking_model(iter(["<think>", "</think>"]), None)
    assert is_thinking_model(None, "{% if x %}<think>\n{% endif %}")
    assert not is_thinking_model({"<think>": 1}, "{{ messages }}")
    assert not is_thinking_model(None, None)


def test_cost_of_a_reasoning_response() -> None:
    # 100 input, 300 completion tokens of which 200 reasoning.
    deltas = ["<think>"] + ["r"] * 198 + ["</think>"] + ["a"] * 100
    _, _, sp = _run(deltas)
    assert sp.reasoning_tokens == 200 and sp.answer_tokens == 100
    completion = sp.reasoning_tokens + sp.answer_tokens
    cost = cost_from_usage(100, completion, sp.reasoning_tokens)
    expected = (100 * Decimal("0.9") + 100 * Decimal(4) + 200 * Decimal(21)) / 10**6
    assert cost == expected == Decimal("0.00469")
