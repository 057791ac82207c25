"""Tool calling through the Worker gRPC service with the real default model (SmolLM2, whose
template has no tool support: the fallback format), tool_choice required / named / auto."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import grpc
import jsonschema
import pytest

from mesh.errors import MD_ERROR_PARAM as ERROR_PARAM_KEY
from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from worker.async_engine import AsyncLLMEngine
from worker.engine import LLMEngine
from worker.loader import LoadedModel
from worker.model_runner import ModelRunner
from worker.service import ServedModel, WorkerServer

pytestmark = pytest.mark.slow

MAX_LEN = 1024
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit"],
}
SEARCH_SCHEMA = {
    "type": "object",
    "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
    "required": ["query"],
}
TOOLS = [
    common_pb2.Tool(
        name="get_weather",
        description="Get the weather forecast for a city.",
        parameters=json.dumps(WEATHER_SCHEMA),
    ),
    common_pb2.Tool(
        name="web_search", description="Search the web.", parameters=json.dumps(SEARCH_SCHEMA)
    ),
]
SCHEMAS = {"get_weather": WEATHER_SCHEMA, "web_search": SEARCH_SCHEMA}
ASK = [common_pb2.ChatMessage(role="user", content="What's the weather in Paris this week?")]


@pytest.fixture
async def stub(
    smollm2: LoadedModel, make_runner: Callable[..., ModelRunner]
) -> AsyncIterator[worker_pb2_grpc.WorkerStub]:
    runner = make_runner(smollm2, max_num_seqs=2, max_model_len=MAX_LEN)
    engine = LLMEngine(runner, smollm2.tokenizer, smollm2.eos_token_ids, max_prefill_tokens=512)
    served = ServedModel("smollm2:135m", MAX_LEN, "w-tools", 2, "cpu", "float32")
    worker = WorkerServer(AsyncLLMEngine(lambda: engine), served)
    await worker.start("127.0.0.1:0")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{worker.port}") as channel:
        yield worker_pb2_grpc.WorkerStub(channel)
    await worker.drain_and_stop(timeout_s=0)


def _request(
    choice: common_pb2.ToolChoice,
    messages=ASK,
    tools=TOOLS,
    parallel: bool | None = None,
    **sampling: object,
) -> worker_pb2.GenerateRequest:
    options = common_pb2.ChatOptions(tools=tools, tool_choice=choice)
    if parallel is not None:
        options.parallel_tool_calls = parallel
    return worker_pb2.GenerateRequest(
        model="smollm2:135m",
        chat=worker_pb2.ChatPrompt(messages=messages, options=options),
        sampling=common_pb2.SamplingParams(max_tokens=200, **sampling),
    )


async def _answer(stub, request) -> tuple[str, list[dict], list[worker_pb2.GenerateResponse]]:
    """The text, the calls as an OpenAI client assembles them, and the raw messages."""
    responses = [r async for r in stub.Generate(request)]
    calls: dict[int, dict] = {}
    for r in responses:
        for d in r.tool_calls:
            call = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            if d.id:
                assert not call["id"] and not call["arguments"]  # id and name come first
                call["id"], call["name"] = d.id, d.name
            call["arguments"] += d.arguments
    return "".join(r.text for r in responses), [calls[i] for i in sorted(calls)], responses


def _check_valid(calls: list[dict]) -> None:
    for call in calls:
        assert call["id"].startswith("call_") and call["name"] in SCHEMAS
        jsonschema.validate(json.loads(call["arguments"]), SCHEMAS[call["name"]])


REQUIRED = common_pb2.ToolChoice(mode=common_pb2.TOOL_CHOICE_REQUIRED)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
async def test_required_always_makes_a_valid_call(stub, temperature: float) -> None:
    request = _request(REQUIRED, parallel=False, temperature=temperature, seed=7)
    text, calls, responses = await _answer(stub, request)
    assert text == ""
    assert len(calls) == 1
    _check_valid(calls)
    assert responses[-1].finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS


async def test_named_function_is_called(stub) -> None:
    choice = common_pb2.ToolChoice(mode=common_pb2.TOOL_CHOICE_FUNCTION, function_name="web_search")
    text, calls, responses = await _answer(stub, _request(choice, temperature=0.0))
    assert text == "" and [c["name"] for c in calls] == ["web_search"]
    _check_valid(calls)
    assert responses[-1].finish_reason == common_pb2.FINISH_REASON_TOOL_CALLS


async def test_round_trip_with_a_tool_result_answers(stub) -> None:
    history = [
        *ASK,
        common_pb2.ChatMessage(
            role="assistant",
            tool_calls=[
                common_pb2.ToolCall(
                    id="call_1",
                    name="get_weather",
                    arguments='{"city": "Paris", "unit": "celsius"}',
                )
            ],
        ),
        common_pb2.ChatMessage(
            role="tool", tool_call_id="call_1", content='{"forecast": "sunny", "high_c": 24}'
        ),
    ]
    auto = common_pb2.ToolChoice(mode=common_pb2.TOOL_CHOICE_AUTO)
    request = _request(auto, messages=history, temperature=0.0)
    text, calls, responses = await _answer(stub, request)
    last = responses[-1]
    assert last.finish_reason in (
        common_pb2.FINISH_REASON_STOP,
        common_pb2.FINISH_REASON_TOOL_CALLS,
        common_pb2.FINISH_REASON_LENGTH,
    )
    assert text or calls
    _check_valid(calls)  # a call the model starts under `auto` is constrained too
    counted = await stub.CountTokens(request)
    assert counted.prompt_tokens == last.usage.prompt_tokens  # tools rendered in both


async def test_none_offers_no_tools(stub) -> None:
    none = common_pb2.ToolChoice(mode=common_pb2.TOOL_CHOICE_NONE)
    with_none = await stub.CountTokens(_request(none))
    with_auto = await stub.CountTokens(_request(common_pb2.ToolChoice()))
    plain = await stub.CountTokens(_request(none, tools=[]))
    assert with_none.prompt_tokens == plain.prompt_tokens < with_auto.prompt_tokens


@pytest.mark.parametrize(
    ("choice", "tools", "param"),
    [
        (
            common_pb2.ToolChoice(mode=common_pb2.TOOL_CHOICE_FUNCTION, function_name="nope"),
            TOOLS,
            "tool_choice",
        ),
        (REQUIRED, [], "tool_choice"),
        (REQUIRED, [common_pb2.Tool(name="f", parameters="{not json")], "tools"),
        (
            REQUIRED,
            [common_pb2.Tool(name="f", parameters='{"type": "object", "minProperties": "x"}')],
            "tools",
        ),
    ],
)
async def test_bad_tools_are_invalid_argument_naming_the_param(
    stub, choice, tools, param: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.Generate(_request(choice, tools=tools)):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(info.value.trailing_metadata())[ERROR_PARAM_KEY] == param
