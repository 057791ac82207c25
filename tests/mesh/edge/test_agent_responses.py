"""Answers in OpenAI's shapes (#15): n choices, tool calls (whole and streamed), logprobs
(chat and legacy completions), usage over all choices. Checked against the `openai` SDK's
own response types too, so a client parses them."""

from __future__ import annotations

import asyncio
import json

import grpc
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from mesh.edge.choices import Answer
from mesh.edge.openai_schema import StreamOptions
from mesh.edge.streaming import chat_chunk, sse_events, text_chunk
from mesh.pb import common_pb2, inference_pb2

STOP, LENGTH, TOOLS = (
    common_pb2.FINISH_REASON_STOP,
    common_pb2.FINISH_REASON_LENGTH,
    common_pb2.FINISH_REASON_TOOL_CALLS,
)


def lp(token: str, logprob: float, *alts: tuple[str, float]) -> common_pb2.TokenLogprob:
    return common_pb2.TokenLogprob(
        token=token,
        logprob=logprob,
        bytes=token.encode(),
        top_logprobs=[common_pb2.TopLogprob(token=t, logprob=v, bytes=t.encode()) for t, v in alts],
    )


def chunk(index=0, text="", finish=0, logprobs=(), calls=(), usage=None):
    c = inference_pb2.CompletionChunk(
        id="r1",
        model="m",
        created=1,
        index=index,
        text=text,
        finish_reason=finish,
        logprobs=list(logprobs),
        tool_calls=list(calls),
    )
    if usage:
        c.usage.CopyFrom(common_pb2.Usage(prompt_tokens=usage[0], completion_tokens=usage[1]))
    return c


def call_delta(index, id_="", name="", arguments=""):
    return common_pb2.ToolCallDelta(index=index, id=id_, name=name, arguments=arguments)


# Three choices, interleaved: text with logprobs, two tool calls, and a cut-off text.
CHUNKS = [
    chunk(0, "He", logprobs=[lp("He", -0.125, ("He", -0.125), ("Hi", -2.5))]),
    chunk(1, calls=[call_delta(0, "call_a", "get_weather", '{"ci')]),
    chunk(2, "Bo"),
    chunk(1, calls=[call_delta(0, arguments='ty": "Paris"}'), call_delta(1, "call_b", "f", "{}")]),
    chunk(0, "llo", logprobs=[lp("llo", -0.25, ("llo", -0.25), ("y", -3.0))]),
    chunk(0, finish=STOP),
    chunk(2, finish=LENGTH),
    chunk(1, finish=TOOLS, usage=(7, 9)),
]


def answer(chunks, n, logprobs=True) -> Answer:
    a = Answer(n, logprobs)
    done = [a.add(c) for c in chunks]
    assert done == [False] * (len(chunks) - 1) + [True]
    return a


def test_a_json_chat_answer_has_every_choice_tool_calls_and_logprobs():
    body = answer(CHUNKS, 3).chat_json(CHUNKS[0])
    ChatCompletion.model_validate(body)  # the SDK parses it
    first, calls, cut = body["choices"]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert first["message"]["content"] == "Hello" and "tool_calls" not in first["message"]
    assert first["logprobs"]["content"] == [
        {
            "token": "He",
            "logprob": -0.125,
            "bytes": [72, 101],
            "top_logprobs": [
                {"token": "He", "logprob": -0.125, "bytes": [72, 101]},
                {"token": "Hi", "logprob": -2.5, "bytes": [72, 105]},
            ],
        },
        {
            "token": "llo",
            "logprob": -0.25,
            "bytes": [108, 108, 111],
            "top_logprobs": [
                {"token": "llo", "logprob": -0.25, "bytes": [108, 108, 111]},
                {"token": "y", "logprob": -3.0, "bytes": [121]},
            ],
        },
    ]
    assert calls["finish_reason"] == "tool_calls" and calls["message"]["content"] is None
    assert calls["message"]["tool_calls"] == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "call_b", "type": "function", "function": {"name": "f", "arguments": "{}"}},
    ]
    assert (cut["finish_reason"], cut["message"]["content"]) == ("length", "Bo")
    assert body["usage"]["prompt_tokens"] == 7 and body["usage"]["completion_tokens"] == 9
    assert body["usage"]["total_tokens"] == 16


def test_without_logprobs_asked_the_field_is_null():
    body = answer(CHUNKS, 3, logprobs=False).chat_json(CHUNKS[0])
    assert all(c["logprobs"] is None for c in body["choices"])


def test_legacy_completion_logprobs_with_offsets_and_echo():
    chunks = [
        # The echoed prompt comes first, without logprobs of its own.
        chunk(0, "Say: He", logprobs=[lp("He", -0.125, ("He", -0.125))]),
        chunk(0, "llo", logprobs=[lp("llo", -0.25, ("llo", -0.25))], finish=STOP, usage=(2, 2)),
    ]
    body = answer(chunks, 1).text_json(chunks[0])
    Completion.model_validate(body)
    choice = body["choices"][0]
    assert choice["text"] == "Say: Hello"
    assert choice["logprobs"] == {
        "tokens": ["He", "llo"],
        "token_logprobs": [-0.125, -0.25],
        "top_logprobs": [{"He": -0.125}, {"llo": -0.25}],
        "text_offset": [5, 7],
    }


def stream(chunks, build, opts) -> list[dict]:
    class FakeCall:
        def __init__(self) -> None:
            self.rest = list(chunks[1:])

        async def read(self):
            return self.rest.pop(0) if self.rest else grpc.aio.EOF

        def cancel(self) -> None:
            pass

    async def collect() -> list[bytes]:
        chat = build is chat_chunk
        return [p async for p in sse_events(FakeCall(), chunks[0], build, opts, announce_role=chat)]

    body = b"".join(asyncio.run(collect())).decode()
    events = [e.removeprefix("data: ") for e in body.strip("\n").split("\n\n")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_a_streamed_chat_answer_in_openai_shapes():
    opts = StreamOptions(stream=True, include_usage=True, n=3, logprobs=True)
    events = stream(CHUNKS, chat_chunk, opts)
    for e in events:
        ChatCompletionChunk.model_validate(e)
    *choices, usage = events
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 16
    by_index: dict[int, list[dict]] = {}
    for e in choices:
        assert len(e["choices"]) == 1
        by_index.setdefault(e["choices"][0]["index"], []).append(e["choices"][0])
    # Each choice starts with the role and ends with its finish_reason.
    for i, finish in ((0, "stop"), (1, "tool_calls"), (2, "length")):
        assert by_index[i][0]["delta"] == {"role": "assistant", "content": ""}
        assert by_index[i][-1]["finish_reason"] == finish
    deltas = [c["delta"]["tool_calls"] for c in by_index[1] if "tool_calls" in c["delta"]]
    assert deltas == [
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"ci'},
            }
        ],
        [
            {"index": 0, "function": {"arguments": 'ty": "Paris"}'}},
            {
                "index": 1,
                "id": "call_b",
                "type": "function",
                "function": {"name": "f", "arguments": "{}"},
            },
        ],
    ]
    text = [c for c in by_index[0] if c["delta"].get("content")]
    assert [c["logprobs"]["content"][0]["token"] for c in text] == ["He", "llo"]


def test_a_streamed_legacy_completion_keeps_text_offsets_per_choice():
    chunks = [
        chunk(0, "ab", logprobs=[lp("a", -1.0), lp("b", -2.0)]),
        chunk(1, "x", logprobs=[lp("x", -0.5)]),
        chunk(0, "c", logprobs=[lp("c", -3.0)], finish=STOP),
        chunk(1, "y", logprobs=[lp("y", -0.5)], finish=STOP, usage=(1, 5)),
    ]
    events = stream(chunks, text_chunk, StreamOptions(stream=True, n=2, logprobs=True))
    offsets = {0: [], 1: []}
    for e in events:
        c = e["choices"][0]
        if c["logprobs"]:
            offsets[c["index"]] += c["logprobs"]["text_offset"]
    assert offsets == {0: [0, 1, 2], 1: [0, 1]}


def test_a_single_choice_stream_is_unchanged():
    chunks = [chunk(0, "Hi"), chunk(0, finish=STOP, usage=(1, 1))]
    events = stream(chunks, chat_chunk, StreamOptions(stream=True))
    assert [e["choices"][0]["delta"] for e in events] == [
        {"role": "assistant", "content": ""},
        {"content": "Hi"},
        {},
    ]
    assert all(e["choices"][0]["logprobs"] is None for e in events)
