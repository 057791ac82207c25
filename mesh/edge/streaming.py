"""Server-sent events in OpenAI's shape, fed by the router's CompletionChunk stream.

`data: {chunk}\\n\\n` … `data: [DONE]\\n\\n`. A failure after the first byte cannot change
the HTTP status any more, so it becomes `data: {"error": {...}}` and the stream ends.
When the client goes away, Starlette cancels the body iterator; the `finally` below then
cancels the gRPC call, and the router cancels the worker's sequence in turn.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from mesh.edge.choices import TextOffsets, chat_logprobs, tool_call_deltas
from mesh.edge.openai_schema import StreamOptions, finish_reason, reasoning_fields, usage_json
from mesh.errors import from_rpc_error
from mesh.pb import common_pb2, inference_pb2

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}

ChunkBuilder = Callable[[inference_pb2.CompletionChunk, str, str | None], dict[str, Any]]


def encode(event: dict[str, Any]) -> bytes:
    return (
        b"data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    )


def chat_chunk(
    chunk: inference_pb2.CompletionChunk, text: str, finish: str | None, *, role: bool = False
) -> dict[str, Any]:
    delta: dict[str, Any] = (
        {"role": "assistant", "content": text} if role else ({"content": text} if text else {})
    )
    return {
        "id": f"chatcmpl-{chunk.id}",
        "object": "chat.completion.chunk",
        "created": chunk.created,
        "model": chunk.model,
        "choices": [
            {"index": chunk.index, "delta": delta, "finish_reason": finish, "logprobs": None}
        ],
        "usage": None,
    }


def text_chunk(
    chunk: inference_pb2.CompletionChunk, text: str, finish: str | None
) -> dict[str, Any]:
    return {
        "id": f"cmpl-{chunk.id}",
        "object": "text_completion",
        "created": chunk.created,
        "model": chunk.model,
        "choices": [
            {"index": chunk.index, "text": text, "finish_reason": finish, "logprobs": None}
        ],
        "usage": None,
    }


def usage_chunk(
    event: dict[str, Any], usage: common_pb2.Usage, cost: common_pb2.Cost | None = None
) -> dict[str, Any]:
    """The extra last chunk of `stream_options.include_usage`: empty choices, usage set (with
    the request's `cost_eur` and `energy_kwh`, which no header can carry on a stream)."""
    return {**event, "choices": [], "usage": usage_json(usage, cost)}


def reasoning_event(chunk: inference_pb2.CompletionChunk, build: ChunkBuilder) -> dict[str, Any]:
    """A chunk carrying only reasoning text: `delta.reasoning_content` (and `delta.reasoning`)
    for chat, the same fields on the choice for text completions."""
    event = build(chunk, "", None)
    choice = event["choices"][0]
    target = choice.get("delta", choice)
    target.update(reasoning_fields(chunk.reasoning_text))
    return event


class _Events:
    """The SSE events of one stream's router chunks: per choice (`index`) the role
    announcement (chat), reasoning, text with its logprobs, tool calls and the finish; after
    the last choice's finish, the usage chunk (`include_usage`)."""

    def __init__(self, build: ChunkBuilder, opts: StreamOptions, *, announce_role: bool) -> None:
        self._build, self._opts, self._chat = build, opts, announce_role
        self._announced: set[int] = set()
        self._offsets: dict[int, TextOffsets] = {}
        self.finished = 0

    def of(self, chunk: inference_pb2.CompletionChunk) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self._chat and chunk.index not in self._announced:
            self._announced.add(chunk.index)
            out.append(chat_chunk(chunk, "", None, role=True))
        if chunk.reasoning_text:
            out.append(reasoning_event(chunk, self._build))
        if chunk.text or (chunk.logprobs and not chunk.tool_calls):
            out.append(self._with_logprobs(self._build(chunk, chunk.text, None), chunk))
        if chunk.tool_calls:
            event = chat_chunk(chunk, "", None)
            event["choices"][0]["delta"] = {"tool_calls": tool_call_deltas(chunk.tool_calls)}
            out.append(event if chunk.text else self._with_logprobs(event, chunk))
        finish = finish_reason(chunk.finish_reason)
        if finish is not None:
            self.finished += 1
            last = self._build(chunk, "", finish)
            out.append(last)
            if self.done and self._opts.include_usage:
                out.append(usage_chunk(last, chunk.usage, chunk.cost))
        return out

    @property
    def done(self) -> bool:
        return self.finished >= self._opts.n

    def _with_logprobs(
        self, event: dict[str, Any], chunk: inference_pb2.CompletionChunk
    ) -> dict[str, Any]:
        if self._opts.logprobs and chunk.logprobs:
            choice = event["choices"][0]
            if self._chat:
                choice["logprobs"] = chat_logprobs(chunk.logprobs)
            else:
                offsets = self._offsets.setdefault(chunk.index, TextOffsets())
                choice["logprobs"] = offsets.logprobs(chunk.text, chunk.logprobs)
        elif not self._chat and chunk.text:  # text_offset counts every character sent
            self._offsets.setdefault(chunk.index, TextOffsets()).logprobs(chunk.text, [])
        return event


async def sse_events(
    call: grpc.aio.UnaryStreamCall,
    first: inference_pb2.CompletionChunk,
    build: ChunkBuilder,
    opts: StreamOptions,
    *,
    announce_role: bool,
) -> AsyncIterator[bytes]:
    """The whole SSE body: `first` (already read, to know the call succeeded) then the rest.

    The events of one router chunk go out as one body part, so one socket write: the role
    announcement with the first text, and the last text with its finish, usage and [DONE]."""
    state = _Events(build, opts, announce_role=announce_role)
    try:
        chunk: inference_pb2.CompletionChunk | None = first
        while chunk is not None:
            events = [encode(e) for e in state.of(chunk)]
            if state.done:
                yield b"".join([*events, DONE])
                return
            if events:
                yield b"".join(events)
            chunk = await read_chunk(call)
        yield DONE
    except grpc.aio.AioRpcError as err:
        error = from_rpc_error(err)
        log.warning("stream %s failed mid-way: %s", first.id, error.message)
        yield encode(error.to_openai())
    finally:
        call.cancel()


async def read_chunk(call: grpc.aio.UnaryStreamCall) -> inference_pb2.CompletionChunk | None:
    msg = await call.read()
    return None if msg is grpc.aio.EOF else msg
