"""worker.tool_calls: the streaming tool-call parser, with hand-made deltas."""

from __future__ import annotations

import json
import re

import pytest

from mesh.pb import common_pb2, worker_pb2
from worker.tool_calls import ToolCallParser, ToolCallStream, parse_call

CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>'
TWO_CALLS = (
    'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
    '</tool_call>\n<tool_call>\n{"name": "search", "arguments": {"q": "a \\"quoted\\" </t"}}\n'
    "</tool_call>"
)


def run(deltas: list[str]) -> tuple[str, list[dict]]:
    """Feeds the deltas, flushes, and assembles the calls as an OpenAI client would."""
    parser = ToolCallParser()
    text, calls = [], {}
    for piece in [*deltas, None]:
        out, got = parser.feed(piece) if piece is not None else parser.flush()
        text.append(out)
        for d in got:
            call = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            if d.id:
                assert not call["id"], "id sent twice"
                assert not call["arguments"], "arguments before the id and name"
                call["id"], call["name"] = d.id, d.name
            call["arguments"] += d.arguments
    assert parser.num_calls == len(calls)
    return "".join(text), [calls[i] for i in sorted(calls)]


def test_one_call_whole() -> None:
    text, calls = run([CALL])
    assert text == ""
    assert len(calls) == 1
    assert re.fullmatch(r"call_[0-9a-f]{24}", calls[0]["id"])
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris", "unit": "c"}


@pytest.mark.parametrize("source", [CALL, TWO_CALLS, "Plain answer, no call.\n"])
def test_split_at_every_position(source: str) -> None:
    """Two deltas cut anywhere (markers split included) assemble into the same answer."""
    expected = run([source])
    for cut in range(len(source) + 1):
        text, calls = run([source[:cut], source[cut:]])
        assert text == expected[0], cut
        assert [(c["name"], c["arguments"]) for c in calls] == [
            (c["name"], c["arguments"]) for c in expected[1]
        ], cut


def test_character_by_character() -> None:
    text, calls = run(list(TWO_CALLS))
    assert text == "Let me check."
    assert [c["name"] for c in calls] == ["get_weather", "search"]
    assert json.loads(calls[1]["arguments"]) == {"q": 'a "quoted" </t'}
    assert calls[0]["id"] != calls[1]["id"]


def test_name_first_then_argument_fragments_as_they_come() -> None:
    parser = ToolCallParser()
    _, got = parser.feed('<tool_call>\n{"name": "get_weather", "argu')
    assert [(d.index, d.name, d.arguments) for d in got] == [(0, "get_weather", "")]
    _, got = parser.feed('ments": {"ci')
    assert [(d.index, d.id, d.name, d.arguments) for d in got] == [(0, "", "", '{"ci')]
    _, got = parser.feed('ty": "a}b"}')
    assert [d.arguments for d in got] == ['ty": "a}b"}']  # a brace inside a string
    _, got = parser.feed("}\n</tool_call>")
    assert got == [] and parser.num_calls == 1


def test_arguments_as_a_json_string_go_whole_at_the_close() -> None:
    text, calls = run(['<tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}</tool_call>'])
    assert text == "" and calls[0]["arguments"] == '{"x":1}'


def test_arguments_before_the_name_go_whole_at_the_close() -> None:
    text, calls = run(['<tool_call>{"arguments": {"x": [1]}, "name": "f"}</tool_call>'])
    assert text == "" and (calls[0]["name"], calls[0]["arguments"]) == ("f", '{"x":[1]}')


def test_text_without_calls_is_unchanged() -> None:
    source = "Hello,  world!\n\nA <tool> tag and <tool_ca text.  \n"
    for cut in range(len(source) + 1):
        assert run([source[:cut], source[cut:]])[0] == source


def test_not_a_call_stays_text() -> None:
    source = "see <tool_call>not json</tool_call> here"
    text, calls = run([source])
    assert text == source and calls == []


def test_call_cut_short_keeps_its_name_and_partial_arguments() -> None:
    text, calls = run(['<tool_call>\n{"name": "f", "arguments": {"a": [1, 2'])
    assert text == ""
    assert calls[0]["name"] == "f" and calls[0]["arguments"] == '{"a": [1, 2'


def test_open_marker_alone_at_the_end_is_text() -> None:
    assert run(["answer <tool_"]) == ("answer <tool_", [])
    assert run(["answer <tool_call>"]) == ("answer <tool_call>", [])


def test_parse_call_shapes() -> None:
    assert parse_call('{"name": "f", "arguments": {"x": 1}}') == ("f", '{"x":1}')
    assert parse_call('{"name": "f", "parameters": {"x": 1}}') == ("f", '{"x":1}')
    assert parse_call('{"name": "f", "arguments": "{\\"x\\": 1}"}') == ("f", '{"x":1}')
    assert parse_call('{"name": "f"}') == ("f", "{}")
    assert parse_call('{"name": "f", "arguments": [1]}') is None
    assert parse_call('{"arguments": {}}') is None
    assert parse_call("nope") is None


def _response(text: str, finish: int = 0, index: int = 0) -> worker_pb2.GenerateResponse:
    return worker_pb2.GenerateResponse(text=text, num_tokens=1, finish_reason=finish, index=index)


def test_stream_sets_finish_reason_tool_calls() -> None:
    stream = ToolCallStream()
    first = stream.apply(_response(CALL[:45]))
    last = stream.apply(_response(CALL[45:], common_pb2.FINISH_REASON_STOP))
    assert first.text == last.text == ""
    assert first.tool_calls[0].name == "get_weather"
    assert last.finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS
    assert json.loads(last.tool_calls[0].arguments) == {"city": "Paris", "unit": "c"}


def test_stream_keeps_length_and_plain_stop() -> None:
    stream = ToolCallStream()
    cut = stream.apply(_response(CALL[:40], common_pb2.FINISH_REASON_LENGTH))
    assert cut.finish_reason == common_pb2.FINISH_REASON_LENGTH
    plain = ToolCallStream().apply(_response("just text", common_pb2.FINISH_REASON_STOP))
    assert plain.finish_reason == common_pb2.FINISH_REASON_STOP and plain.text == "just text"


def test_stream_parses_each_choice_apart() -> None:
    stream = ToolCallStream()
    a = stream.apply(_response(CALL[:20], index=0))
    b = stream.apply(_response("text of choice 1", common_pb2.FINISH_REASON_STOP, index=1))
    c = stream.apply(_response(CALL[20:], common_pb2.FINISH_REASON_STOP, index=0))
    assert a.text == "" and b.text == "text of choice 1"
    assert b.finish_reason == common_pb2.FINISH_REASON_STOP
    assert c.finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS
    assert [d.index for d in c.tool_calls] == [0, 0]
