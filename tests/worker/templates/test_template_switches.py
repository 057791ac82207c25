"""worker.template_switches: chat_template_kwargs and reasoning_effort onto a template's
variables, and the refusals (InvalidRequest naming the field)."""

from __future__ import annotations

import json

import pytest

from mesh.pb import common_pb2
from tests.llamacpp_sources import published_template
from worker.chat_template import ChatTemplate
from worker.errors import InvalidRequest
from worker.template_switches import template_switches

PLAIN = ChatTemplate("{% for m in messages %}{{ m.content }}{% endfor %}", {})


def options(kwargs: object = None, effort: str = "") -> common_pb2.ChatOptions:
    raw = kwargs if isinstance(kwargs, str) else json.dumps(kwargs) if kwargs is not None else ""
    return common_pb2.ChatOptions(chat_template_kwargs=raw, reasoning_effort=effort)


@pytest.fixture(scope="module")
def qwen3() -> ChatTemplate:
    return ChatTemplate(published_template("Qwen-Qwen3-0.6B"), {})


@pytest.fixture(scope="module")
def granite() -> ChatTemplate:
    return ChatTemplate(published_template("ibm-granite-granite-3.3-2B-Instruct"), {})


@pytest.fixture(scope="module")
def gpt_oss() -> ChatTemplate:
    return ChatTemplate(published_template("openai-gpt-oss-120b"), {})


def test_nothing_asked_nothing_set() -> None:
    assert template_switches(options(), PLAIN) == {}
    assert template_switches(options(), None) == {}


def test_kwargs_reach_the_template(qwen3: ChatTemplate) -> None:
    assert template_switches(options({"enable_thinking": False}), qwen3) == {
        "enable_thinking": False
    }
    rendered = qwen3.render([{"role": "user", "content": "hi"}], True, enable_thinking=False)
    assert rendered.endswith("<think>\n\n</think>\n\n")


@pytest.mark.parametrize(
    ("effort", "expected"), [("none", False), ("low", True), ("high", True), ("minimal", True)]
)
def test_effort_maps_onto_the_thinking_switch(
    qwen3: ChatTemplate, granite: ChatTemplate, effort: str, expected: bool
) -> None:
    assert template_switches(options(effort=effort), qwen3) == {"enable_thinking": expected}
    assert template_switches(options(effort=effort), granite) == {"thinking": expected}


def test_effort_goes_as_is_where_the_template_reads_it(gpt_oss: ChatTemplate) -> None:
    assert template_switches(options(effort="low"), gpt_oss) == {"reasoning_effort": "low"}


def test_explicit_kwargs_win_over_the_effort(qwen3: ChatTemplate) -> None:
    got = template_switches(options({"enable_thinking": True}, effort="none"), qwen3)
    assert got == {"enable_thinking": True}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({"enable_thinking": {"deep": True}}, "must be a string, number, boolean or null"),
        ({"enable_thinking": [True]}, "must be a string, number, boolean or null"),
        ({"messages": []}, "may not set 'messages'"),
        ({"add_generation_prompt": False}, "may not set"),
        ({"bogus_switch": 1}, "does not read 'bogus_switch'; it reads .*enable_thinking"),
    ],
)
def test_bad_kwargs_are_refused_naming_the_field(
    qwen3: ChatTemplate, kwargs: object, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message) as err:
        template_switches(options(kwargs), qwen3)
    assert err.value.param == "chat_template_kwargs"


def test_effort_without_a_switch_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="no reasoning switch") as err:
        template_switches(options(effort="high"), PLAIN)
    assert err.value.param == "reasoning_effort"
    with pytest.raises(InvalidRequest, match="no chat template") as err:
        template_switches(options({"x": 1}), None)
    assert err.value.param == "chat_template_kwargs"
