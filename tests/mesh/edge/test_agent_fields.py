"""No silent drops (#15): every request field the installed `openai` SDK types for chat and
completions is honoured (it changes the router request), accepted as a no-op with a value
that changes nothing, or refused with 400 naming it. A field a newer SDK adds fails the
enumeration test until it is sorted into one of those."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from openai.types import completion_create_params as text_params
from openai.types.chat import completion_create_params as chat_params
from pydantic import BaseModel

from mesh.edge import openai_schema as schema
from mesh.errors import InvalidRequest
from mesh.pb import common_pb2

MSG = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}

# field -> (honoured values, no-op values, refused values); every SDK field is listed.
CHAT: dict[str, tuple[list, list, list]] = {
    "model": (["other:1b"], [], [3]),
    "messages": ([[{"role": "user", "content": "yo"}]], [], [[]]),
    "temperature": ([0.3], [], [3]),
    "top_p": ([0.0, 0.5], [], [2]),
    "max_tokens": ([7], [], [0]),
    "max_completion_tokens": ([9], [], [0]),
    "n": ([3], [1], [17, 0]),
    "seed": ([5], [], ["x"]),
    "stop": (["END", ["a", "b"]], [], [["a"] * 5]),
    "presence_penalty": ([0.5], [0], [3]),
    "frequency_penalty": ([0.5], [0], [3]),
    "logit_bias": ([{"50": -100}], [{}], [{"x": 1}, {"5": 101}]),
    "logprobs": ([True], [False], ["yes"]),
    "top_logprobs": ([], [0], [21]),  # with logprobs: below
    "response_format": (
        [
            {"type": "json_object"},
            {"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}},
        ],
        [{"type": "text"}],
        [{"type": "grammar"}, {"type": "json_schema", "json_schema": {"schema": {"type": 5}}}],
    ),
    "tools": ([[TOOL]], [[]], [[{"type": "custom", "custom": {"name": "x"}}]]),
    "tool_choice": ([], ["auto", "none"], ["required", "sometimes"]),  # with tools: below
    "parallel_tool_calls": ([False], [], ["no"]),
    "reasoning_effort": (["low"], [], ["huge"]),
    "stream": ([True], [False], ["yes"]),
    "stream_options": ([], [{"include_usage": False}], [{"include_usage": 3}]),
    "user": (["u1"], [], [5]),
    "safety_identifier": (["u2"], [], [5]),
    "metadata": ([], [{"k": "v"}], [{"k": 5}]),
    "store": ([], [False], [True]),
    "service_tier": ([], ["auto", "default"], ["flex", "priority"]),
    "prompt_cache_key": ([], ["k1"], [5]),
    "prompt_cache_options": ([], [{"mode": "implicit"}], [5]),
    "prompt_cache_retention": ([], ["in_memory"], ["24h"]),
    "prediction": ([], [{"type": "content", "content": "x"}], [5]),
    "modalities": ([], [["text"]], [["text", "audio"]]),
    "verbosity": ([], ["medium"], ["low", "high"]),
    "audio": ([], [], [{"voice": "alloy", "format": "wav"}]),
    "web_search_options": ([], [], [{}]),
    "moderation": ([], [], [{"model": "omni-moderation-latest"}]),
    "functions": ([], [], [[{"name": "f"}]]),
    "function_call": ([], [], ["auto"]),
}
TEXT: dict[str, tuple[list, list, list]] = {
    "model": (["other:1b"], [], [3]),
    "prompt": (["yo", ["yo"]], [], [[1, 2], ["a", "b"]]),
    "temperature": ([0.3], [], [3]),
    "top_p": ([0.0], [], [2]),
    "max_tokens": ([7], [], [0]),
    "n": ([2], [1], [17]),
    "seed": ([5], [], ["x"]),
    "stop": (["END"], [], [["a"] * 5]),
    "presence_penalty": ([0.5], [0], [3]),
    "frequency_penalty": ([0.5], [0], [3]),
    "logit_bias": ([{"50": 10}], [{}], [{"-1": 1}]),
    "logprobs": ([0, 5], [], [6, True]),
    "echo": ([True], [False], ["yes"]),
    "suffix": ([], [""], ["tail"]),
    "best_of": ([], [1], [3]),
    "stream": ([True], [False], ["yes"]),
    "stream_options": ([], [{"include_usage": False}], [{"include_usage": 3}]),
    "user": (["u1"], [], [5]),
}


def sdk_fields(module) -> set[str]:
    names: set[str] = set()
    for cls in (module.CompletionCreateParamsStreaming, module.CompletionCreateParamsNonStreaming):
        for base in cls.__mro__:
            names |= set(getattr(base, "__annotations__", {}))
    return names


def base_body(fn) -> dict:
    if fn is schema.chat_request:
        return {"model": "m:1b", "messages": MSG}
    return {"model": "m:1b", "prompt": "once"}


def request_of(fn, **fields):
    call = fn({**base_body(fn), **fields})
    return call.request.SerializeToString(deterministic=True), call.options


@pytest.mark.parametrize(("module", "table"), [(chat_params, CHAT), (text_params, TEXT)])
def test_every_sdk_field_is_sorted(module, table):
    fields = sdk_fields(module) - {"extra_headers", "extra_query", "extra_body", "timeout"}
    assert fields - set(table) == set(), "new SDK fields: honour them or refuse them with 400"


CASES = [
    (fn, field, kind, value)
    for fn, table in ((schema.chat_request, CHAT), (schema.completion_request, TEXT))
    for field, (honoured, no_ops, refused) in table.items()
    for kind, values in (("honoured", honoured), ("no-op", no_ops), ("refused", refused))
    for value in values
]


@pytest.mark.parametrize(("fn", "field", "kind", "value"), CASES)
def test_each_field_is_honoured_a_no_op_or_refused_by_name(fn, field, kind, value):
    if kind == "refused":
        with pytest.raises(InvalidRequest) as info:
            fn({**base_body(fn), field: value})
        assert info.value.http_status == 400
        assert info.value.param.split(".")[0].split("[")[0] == field, info.value.message
        return
    before = request_of(fn)
    after = request_of(fn, **{field: value})
    assert (after != before) == (kind == "honoured"), (field, value)


def test_pairs_honoured_only_together():
    base = request_of(schema.chat_request, logprobs=True)
    assert request_of(schema.chat_request, logprobs=True, top_logprobs=5) != base
    with_tools = request_of(schema.chat_request, tools=[TOOL])
    for choice in ("required", {"type": "function", "function": {"name": "get_weather"}}):
        assert request_of(schema.chat_request, tools=[TOOL], tool_choice=choice) != with_tools
    assert request_of(schema.chat_request, stream=True, stream_options={"include_usage": True})[
        1
    ] == schema.StreamOptions(stream=True, include_usage=True)
    assert request_of(schema.chat_request, chat_template_kwargs={"enable_thinking": False}) != (
        request_of(schema.chat_request)
    )
    assert request_of(schema.chat_request, min_p=0.1) != request_of(schema.chat_request)
    assert request_of(schema.chat_request, repetition_penalty=1.2) != request_of(
        schema.chat_request
    )


def chat(**fields):
    return schema.chat_request({"model": "m:1b", "messages": MSG, **fields}).request


def test_agent_fields_map_to_the_proto():
    req = chat(
        tools=[{**TOOL, "function": {**TOOL["function"], "description": "d", "strict": True}}],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        reasoning_effort="high",
        chat_template_kwargs={"enable_thinking": False},
        n=3,
        min_p=0.05,
        repetition_penalty=1.1,
        logit_bias={"42": -100, "7": 2.5},
        logprobs=True,
        top_logprobs=4,
        top_p=0,
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": SCHEMA}},
    )
    tool = req.options.tools[0]
    assert (tool.name, tool.description, json.loads(tool.parameters), tool.strict) == (
        "get_weather",
        "d",
        {"type": "object"},
        True,
    )
    assert req.options.tool_choice == common_pb2.ToolChoice(
        mode=common_pb2.TOOL_CHOICE_FUNCTION, function_name="get_weather"
    )
    assert req.options.HasField("parallel_tool_calls") and not req.options.parallel_tool_calls
    assert req.options.reasoning_effort == "high"
    assert json.loads(req.options.chat_template_kwargs) == {"enable_thinking": False}
    s = req.sampling
    assert (s.n, s.logprobs, s.top_logprobs, dict(s.logit_bias)) == (3, True, 4, {42: -100, 7: 2.5})
    assert s.min_p == pytest.approx(0.05) and s.repetition_penalty == pytest.approx(1.1)
    assert s.HasField("top_p") and s.top_p == 0  # top_p 0: greedy, sent as given
    assert json.loads(s.constraint.json_schema) == SCHEMA
    assert chat(response_format={"type": "json_object"}).sampling.constraint.json_object
    assert not chat(response_format={"type": "text"}).sampling.HasField("constraint")
    assert chat(tool_choice="required", tools=[TOOL]).options.tool_choice.mode == (
        common_pb2.TOOL_CHOICE_REQUIRED
    )
    assert chat(tool_choice="none", tools=[TOOL]).options.tool_choice.mode == (
        common_pb2.TOOL_CHOICE_NONE
    )


def test_tool_turns_map_to_the_proto():
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    req = chat(
        messages=[
            *MSG,
            {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ]
    )
    assistant, tool = req.messages[1], req.messages[2]
    assert [(c.id, c.name, c.arguments) for c in assistant.tool_calls] == [("call_1", "f", "{}")]
    assert (tool.role, tool.tool_call_id, tool.content) == ("tool", "call_1", "sunny")


def test_completion_logprobs_and_echo():
    req = schema.completion_request({"model": "m", "prompt": "a", "logprobs": 0, "echo": True})
    assert req.request.echo and req.request.sampling.logprobs
    assert req.request.sampling.top_logprobs == 0 and req.options.logprobs
    plain = schema.completion_request({"model": "m", "prompt": "a"})
    assert not plain.request.sampling.logprobs and not plain.options.logprobs


def param_of(**fields) -> tuple[str, str]:
    with pytest.raises(InvalidRequest) as info:
        chat(**fields)
    return info.value.param, info.value.code


@pytest.mark.parametrize(
    ("fields", "param", "code"),
    [
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "x"}}}},
            "response_format.json_schema.schema",
            "invalid_json_schema",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": []}}},
            "response_format.json_schema.schema",
            "invalid_json_schema",
        ),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", None),
        (
            {"tools": [{**TOOL, "function": {"name": "f", "parameters": {"required": 1}}}]},
            "tools[0].function.parameters",
            "invalid_json_schema",
        ),
        ({"tools": [TOOL, TOOL]}, "tools", "invalid_parameter_combination"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
            "invalid_parameter_combination",
        ),
        ({"tool_choice": "required"}, "tool_choice", None),
        ({"tool_choice": {"type": "allowed_tools", "allowed_tools": {}}}, "tool_choice", None),
        ({"top_logprobs": 2}, "top_logprobs", None),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs", None),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id", None),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]}]},
            "messages[0].tool_calls[0].function",
            None,
        ),
        ({"logit_bias": {"1234567890": 1}}, "logit_bias", None),
        ({"n": 100}, "n", None),
    ],
)
def test_bad_agent_fields_are_400_naming_them(fields, param, code):
    got_param, got_code = param_of(**fields)
    assert got_param == param
    if code:
        assert got_code == code


def test_n_beyond_the_bound_says_why():
    with pytest.raises(InvalidRequest) as info:
        chat(n=17)
    assert "at most 16" in info.value.message and "several requests" in info.value.message


def sent_bodies(answer: dict) -> tuple[list[dict], object]:
    """The request bodies a client sends, captured by an httpx transport that answers
    `answer` as the chat completion's message."""
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        choice = {"index": 0, "message": answer, "finish_reason": "stop", "logprobs": None}
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        body = {"id": "x", "object": "chat.completion", "created": 1, "model": "m"}
        return httpx.Response(200, json={**body, "choices": [choice], "usage": usage})

    return bodies, httpx.Client(transport=httpx.MockTransport(handler))


def test_what_the_sdk_and_langchain_send_maps_to_the_proto():
    class City(BaseModel):
        name: str

    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": "{}"},
    }
    bodies, http = sent_bodies(
        {"role": "assistant", "content": '{"name": "Lyon"}', "tool_calls": [call]}
    )
    client = openai.OpenAI(base_url="http://x/v1", api_key="k", http_client=http)
    client.chat.completions.parse(model="m", messages=MSG, response_format=City)
    reply = client.chat.completions.create(model="m", messages=MSG, tools=[TOOL])
    # The SDK's own message object sent back, and a tool result.
    tool_turn = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    client.chat.completions.create(model="m", messages=[*MSG, reply.choices[0].message, tool_turn])
    llm = ChatOpenAI(model="m", base_url="http://x/v1", api_key="k", http_client=http)
    llm.bind_tools([TOOL], tool_choice="any").invoke("weather?")
    llm.with_structured_output(City).invoke("a city")
    parsed, _, round_trip, bound, structured = (schema.chat_request(b).request for b in bodies)
    assert json.loads(parsed.sampling.constraint.json_schema)["required"] == ["name"]
    assert [c.name for c in round_trip.messages[1].tool_calls] == ["get_weather"]
    assert round_trip.messages[2].tool_call_id == "call_1"
    assert bound.options.tool_choice.mode == common_pb2.TOOL_CHOICE_REQUIRED
    assert structured.sampling.constraint.json_schema
