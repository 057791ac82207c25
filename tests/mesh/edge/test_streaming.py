"""mesh.edge.streaming: one body part (one socket write) per router chunk."""

from __future__ import annotations

import asyncio
import json

import grpc

from mesh.edge.openai_schema import StreamOptions
from mesh.edge.streaming import DONE, chat_chunk, sse_events
from mesh.pb import common_pb2, inference_pb2


class FakeCall:
    def __init__(self, chunks: list[inference_pb2.CompletionChunk]) -> None:
        self._chunks = list(chunks)
        self.cancelled = False

    async def read(self):
        return self._chunks.pop(0) if self._chunks else grpc.aio.EOF

    def cancel(self) -> None:
        self.cancelled = True


def chunk(text: str, finish: int = 0) -> inference_pb2.CompletionChunk:
    c = inference_pb2.CompletionChunk(
        id="r1", model="m", created=1, text=text, finish_reason=finish
    )
    if finish:
        c.usage.CopyFrom(common_pb2.Usage(prompt_tokens=3, completion_tokens=2))
    return c


def body_parts(chunks, include_usage: bool) -> list[bytes]:
    async def collect() -> list[bytes]:
        call = FakeCall(chunks[1:])
        opts = StreamOptions(stream=True, include_usage=include_usage)
        parts = [p async for p in sse_events(call, chunks[0], chat_chunk, opts, announce_role=True)]
        assert call.cancelled  # the call is always released
        return parts

    return asyncio.run(collect())


def events(part: bytes) -> list[str]:
    return [e.removeprefix("data: ") for e in part.decode().strip("\n").split("\n\n")]


def test_the_role_goes_out_with_the_first_text_and_the_end_in_one_part() -> None:
    stop = common_pb2.FINISH_REASON_STOP
    parts = body_parts([chunk("He"), chunk("l"), chunk("lo", stop)], include_usage=True)
    assert len(parts) == 3  # one per router chunk
    first = [json.loads(e) for e in events(parts[0])]
    assert [c["choices"][0]["delta"] for c in first] == [
        {"role": "assistant", "content": ""},
        {"content": "He"},
    ]
    assert events(parts[1]) and json.loads(events(parts[1])[0])["choices"][0]["delta"] == {
        "content": "l"
    }
    *last, done = events(parts[2])
    assert done == DONE.decode().strip().removeprefix("data: ")
    text, finish, usage = (json.loads(e) for e in last)
    assert text["choices"][0]["delta"] == {"content": "lo"}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] == 5


def test_a_stream_the_router_ends_without_a_finish_still_gets_done() -> None:
    parts = body_parts([chunk("Hi")], include_usage=False)
    assert parts[-1] == DONE and len(parts) == 2
