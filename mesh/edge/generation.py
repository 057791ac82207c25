"""The generation endpoints: chat completions, completions (JSON or SSE) and embeddings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mesh.edge import openai_schema as schema
from mesh.edge.choices import Answer
from mesh.edge.router_calls import call_metadata, response_headers, router_of, until_disconnect
from mesh.edge.streaming import (
    SSE_HEADERS,
    ChunkBuilder,
    chat_chunk,
    read_chunk,
    sse_events,
    text_chunk,
)
from mesh.errors import Unavailable, from_rpc_error
from mesh.pb import inference_pb2


async def _open(
    request: Request, method: str, message: Any
) -> tuple[grpc.aio.UnaryStreamCall, inference_pb2.CompletionChunk, dict[str, str]]:
    """The router's headers and first chunk (from the first router that answers: see
    `router_pool`): an error here is still an HTTP status."""
    try:
        call, md, first = await router_of(request).open_stream(
            method,
            message,
            metadata=call_metadata(request),
            timeout=request.app.state.config.request_timeout_s,
        )
    except grpc.aio.AioRpcError as err:
        raise from_rpc_error(err) from None
    if first is None:
        raise Unavailable("The router ended the stream without an answer; retry the request.")
    return call, first, response_headers(md)


async def _collect(
    call: grpc.aio.UnaryStreamCall, first: inference_pb2.CompletionChunk, opts: schema.StreamOptions
) -> Answer:
    """Every choice to its end (each choice's last chunk has a finish_reason)."""
    answer = Answer(opts.n, opts.logprobs)
    try:
        done = answer.add(first)
        while not done and (chunk := await read_chunk(call)) is not None:
            done = answer.add(chunk)
    except grpc.aio.AioRpcError as err:
        raise from_rpc_error(err) from None
    except ValueError as err:  # a choice index out of range: a router bug, not the client's
        raise Unavailable(
            f"The router's answer was malformed ({err}); retry the request."
        ) from None
    return answer


async def _generate(
    request: Request,
    method: str,
    message: Any,
    opts: schema.StreamOptions,
    build_chunk: ChunkBuilder,
    build_response: Callable[[Answer, inference_pb2.CompletionChunk], dict[str, Any]],
) -> Response:
    call, first, headers = await until_disconnect(request, _open(request, method, message))
    try:
        if opts.stream:
            body = sse_events(
                call, first, build_chunk, opts, announce_role=build_chunk is chat_chunk
            )
            return StreamingResponse(
                body, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
            )
        answer = await until_disconnect(request, _collect(call, first, opts))
    except BaseException:
        call.cancel()
        raise
    last = answer.last or first
    headers["x-llmaas-cost-eur"] = last.cost.cost_eur or "0"
    headers["x-llmaas-energy-kwh"] = last.cost.energy_kwh or "0"
    return JSONResponse(
        build_response(answer, first),
        headers=headers,
        background=BackgroundTask(_await_end, call),
    )


async def _await_end(call: grpc.aio.UnaryStreamCall, timeout_s: float = 10.0) -> None:
    """After the answer went out: let the router end its stream (it records usage after the
    last chunk), so the call closes cleanly and the edge's trace span covers the router's."""
    try:
        await asyncio.wait_for(call.code(), timeout_s)
    except Exception:  # noqa: BLE001 - the client has its answer; just release the call
        call.cancel()


# -- endpoints --------------------------------------------------------------------------


async def chat_completions(request: Request) -> Response:
    call_metadata(request)  # an unusable Authorization header is refused before the body is read
    spec = schema.chat_request(schema.parse_json(await request.body()))
    return await _generate(
        request,
        "ChatCompletion",
        spec.request,
        spec.options,
        chat_chunk,
        Answer.chat_json,
    )


async def completions(request: Request) -> Response:
    call_metadata(request)
    spec = schema.completion_request(schema.parse_json(await request.body()))
    return await _generate(
        request,
        "Completion",
        spec.request,
        spec.options,
        text_chunk,
        Answer.text_json,
    )


async def embeddings(request: Request) -> Response:
    md = call_metadata(request)
    spec = schema.embeddings_request(schema.parse_json(await request.body()))
    reply, call = await until_disconnect(
        request,
        router_of(request).unary(
            "Embeddings",
            spec.request,
            metadata=md,
            timeout=request.app.state.config.request_timeout_s,
        ),
    )
    headers = response_headers(await call.initial_metadata())
    headers["x-llmaas-cost-eur"] = reply.cost.cost_eur or "0"
    headers["x-llmaas-energy-kwh"] = reply.cost.energy_kwh or "0"
    return JSONResponse(schema.embeddings_json(reply, spec.encoding_format), headers=headers)
