"""The HTTP edge: OpenAI's HTTP API in front of the router's gRPC `Inference` service.

No business logic here: validate the JSON, call the router with the caller's key and
request id as metadata, and render the answer (JSON, SSE, or an OpenAI error object).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mesh import tracing
from mesh.console.routes import console_routes
from mesh.edge import openai_schema as schema
from mesh.edge.config import EdgeConfig
from mesh.edge.limits import BodyLimitMiddleware
from mesh.edge.openapi import openapi_document
from mesh.edge.requests import MAX_MODEL_CHARS
from mesh.edge.streaming import (
    SSE_HEADERS,
    ChunkBuilder,
    chat_chunk,
    read_chunk,
    sse_events,
    text_chunk,
)
from mesh.errors import (
    INVALID_REQUEST,
    REQUEST_TIMEOUT,
    ErrorKind,
    MeshError,
    NotFound,
    Unauthenticated,
    Unavailable,
    from_rpc_error,
)
from mesh.metrics_http import metrics_endpoint
from mesh.pb import inference_pb2, inference_pb2_grpc
from mesh.rpc import open_channel
from mesh.tracing_asgi import TracingMiddleware
from mesh.wire import HEALTH_FILTER as FILTER
from mesh.wire import HEALTH_MESH as MESH
from mesh.wire import HEALTH_MODEL_PREFIX as MODEL_PREFIX
from mesh.wire import MD_AUTHORIZATION, MD_COPIED_PREFIXES, MD_REQUEST_ID

log = logging.getLogger(__name__)
T = TypeVar("T")

# Router initial metadata copied to HTTP response headers.
COPIED_PREFIXES = MD_COPIED_PREFIXES
COPIED_HEADERS = ("deprecation", "sunset", "link")
FORWARDED_HEADERS = ("x-request-id", "traceparent", "tracestate")
# Longest Authorization header forwarded to the router (API keys are ~50 characters): a
# longer one is refused here, so absurd metadata never reaches the mesh or its audit.
MAX_AUTHORIZATION_BYTES = 1024
# W3C trace context: traceparent is 55 characters, tracestate at most 512 by the spec.
MAX_TRACE_HEADER_BYTES = 512
METHOD_NOT_ALLOWED = ErrorKind(
    grpc.StatusCode.UNIMPLEMENTED, 405, "invalid_request_error", "method_not_allowed"
)


@dataclass(slots=True)
class RouterClient:
    channel: grpc.aio.Channel
    inference: inference_pb2_grpc.InferenceStub
    health: health_pb2_grpc.HealthStub


class ClientGone(Exception):
    """The HTTP client disconnected before the answer was ready."""


# -- request id -------------------------------------------------------------------------


class RequestIdMiddleware:
    """Every response carries `x-request-id`: the client's (if sane) or a new one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(dict(scope["headers"]).get(b"x-request-id", b""))
        # Shared with the 500 handler, which answers outside this middleware.
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def _request_id(raw: bytes) -> str:
    text = raw.decode("latin-1")
    ok = 0 < len(text) <= 128 and text.isascii() and text.isprintable()
    return text if ok else uuid.uuid4().hex


# -- router calls -----------------------------------------------------------------------


def _router(request: Request) -> RouterClient:
    return request.app.state.router


def _metadata(request: Request) -> tuple[tuple[str, str], ...]:
    md = [(MD_REQUEST_ID, request.scope["state"]["request_id"])]
    auth = request.headers.get("authorization")
    if auth is not None and len(auth) > MAX_AUTHORIZATION_BYTES:
        raise Unauthenticated(
            f"The Authorization header is {len(auth)} bytes; an API key header is at most "
            f"{MAX_AUTHORIZATION_BYTES}. Send 'Authorization: Bearer <your API key>'.",
            code="invalid_api_key",
        )
    if auth is not None and auth.isascii():
        md.append((MD_AUTHORIZATION, auth))
    if not tracing.enabled():  # tracing on: the edge's own span context is injected instead
        md.extend(
            (h, v)
            for h in FORWARDED_HEADERS[1:]
            if (v := request.headers.get(h)) and v.isascii() and len(v) <= MAX_TRACE_HEADER_BYTES
        )
    return tuple(tracing.inject_metadata(md))


def _response_headers(md: Any) -> dict[str, str]:
    out = {}
    for key, value in md or ():
        k = key.lower()
        if isinstance(value, str) and (k.startswith(COPIED_PREFIXES) or k in COPIED_HEADERS):
            out[k] = value
    return out


async def _until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Runs `work`, cancelling it if the client disconnects first (raises ClientGone)."""
    task = asyncio.ensure_future(work)

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise ClientGone
    return task.result()


async def _open(
    call: grpc.aio.UnaryStreamCall,
) -> tuple[inference_pb2.CompletionChunk, dict[str, str]]:
    """Waits for the router's headers and first chunk: an error here is still an HTTP status."""
    try:
        md = await call.initial_metadata()
        first = await read_chunk(call)
    except grpc.aio.AioRpcError as err:
        raise from_rpc_error(err) from None
    if first is None:
        raise Unavailable("The router ended the stream without an answer; retry the request.")
    return first, _response_headers(md)


async def _collect(call: grpc.aio.UnaryStreamCall, first: inference_pb2.CompletionChunk):
    parts, thoughts, chunk = [first.text], [first.reasoning_text], first
    try:
        while not chunk.finish_reason and (nxt := await read_chunk(call)) is not None:
            chunk = nxt
            parts.append(chunk.text)
            thoughts.append(chunk.reasoning_text)
    except grpc.aio.AioRpcError as err:
        raise from_rpc_error(err) from None
    return "".join(parts), "".join(thoughts), chunk


async def _generate(
    request: Request,
    method: Callable[..., grpc.aio.UnaryStreamCall],
    message: Any,
    opts: schema.StreamOptions,
    build_chunk: ChunkBuilder,
    build_response: Callable[..., dict[str, Any]],
) -> Response:
    call = method(
        message, metadata=_metadata(request), timeout=request.app.state.config.request_timeout_s
    )
    try:
        first, headers = await _until_disconnect(request, _open(call))
        if opts.stream:
            body = sse_events(
                call, first, build_chunk, opts, announce_role=build_chunk is chat_chunk
            )
            return StreamingResponse(
                body, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
            )
        text, reasoning, last = await _until_disconnect(request, _collect(call, first))
    except BaseException:
        call.cancel()
        raise
    headers["x-llmaas-cost-eur"] = last.cost.cost_eur or "0"
    headers["x-llmaas-energy-kwh"] = last.cost.energy_kwh or "0"
    return JSONResponse(
        build_response(first, text, last, reasoning),
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
    _metadata(request)  # an unusable Authorization header is refused before the body is read
    spec = schema.chat_request(schema.parse_json(await request.body()))
    return await _generate(
        request,
        _router(request).inference.ChatCompletion,
        spec.request,
        spec.options,
        chat_chunk,
        schema.chat_completion_json,
    )


async def completions(request: Request) -> Response:
    _metadata(request)
    spec = schema.completion_request(schema.parse_json(await request.body()))
    return await _generate(
        request,
        _router(request).inference.Completion,
        spec.request,
        spec.options,
        text_chunk,
        schema.text_completion_json,
    )


async def embeddings(request: Request) -> Response:
    md = _metadata(request)
    spec = schema.embeddings_request(schema.parse_json(await request.body()))
    call = _router(request).inference.Embeddings(
        spec.request,
        metadata=md,
        timeout=request.app.state.config.request_timeout_s,
    )
    reply = await _until_disconnect(request, call)
    headers = _response_headers(await call.initial_metadata())
    headers["x-llmaas-cost-eur"] = reply.cost.cost_eur or "0"
    headers["x-llmaas-energy-kwh"] = reply.cost.energy_kwh or "0"
    return JSONResponse(schema.embeddings_json(reply, spec.encoding_format), headers=headers)


async def list_models(request: Request) -> Response:
    reply = await _router(request).inference.ListModels(
        inference_pb2.ListModelsRequest(), metadata=_metadata(request), timeout=10
    )
    return JSONResponse({"object": "list", "data": [schema.model_json(m) for m in reply.models]})


async def get_model(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    if len(model_id) > MAX_MODEL_CHARS:
        raise NotFound(  # no model has such an id: answered without asking the router
            f"The model id is {len(model_id)} characters; model ids are at most "
            f"{MAX_MODEL_CHARS}. List the served models with GET /v1/models.",
            param="model",
        )
    reply = await _router(request).inference.GetModel(
        inference_pb2.GetModelRequest(id=model_id),
        metadata=_metadata(request),
        timeout=10,
    )
    return JSONResponse(schema.model_json(reply))


async def fetch_summary(request: Request, key: str) -> dict[str, Any]:
    """The console's summary from the router, scoped by the router to the caller's key."""
    md = [
        (MD_AUTHORIZATION, f"Bearer {key}"),
        (MD_REQUEST_ID, request.scope["state"]["request_id"]),
    ]
    window = _int_param(request, "window", 3600, 60, 7 * 86400)
    bucket = _int_param(request, "bucket", 60, 1, 3600)
    try:
        reply = await _router(request).inference.GetConsoleSummary(
            inference_pb2.ConsoleSummaryRequest(window_seconds=window, bucket_seconds=bucket),
            metadata=tuple(tracing.inject_metadata(md)),
            timeout=10,
        )
    except grpc.aio.AioRpcError as err:
        raise from_rpc_error(err) from None
    return json.loads(reply.json)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(request.query_params.get(name, default))))
    except ValueError:
        return default


async def openapi(request: Request) -> Response:
    """The published OpenAPI document (also `mesh/edge/openapi.json` in the repository)."""
    return JSONResponse(request.app.state.openapi)


async def health(request: Request) -> Response:
    """200 once router, filter and one worker per served model are ready (the router knows)."""
    try:
        reply = await _router(request).health.List(
            health_pb2.HealthListRequest(), timeout=request.app.state.config.health_timeout_s
        )
    except grpc.aio.AioRpcError as err:
        body = {"status": "unavailable", "router": f"unreachable ({err.code().name})"}
        return JSONResponse(body, status_code=503)
    names = {
        name: health_pb2.HealthCheckResponse.ServingStatus.Name(s.status)
        for name, s in reply.statuses.items()
    }
    ok = names.get(MESH) == "SERVING"
    body = {
        "status": "ok" if ok else "unavailable",
        "router": names.get("", "UNKNOWN"),
        "filter": names.get(FILTER, "UNKNOWN"),
        "models": {
            n.removeprefix(MODEL_PREFIX): s for n, s in names.items() if n.startswith(MODEL_PREFIX)
        },
    }
    return JSONResponse(body, status_code=200 if ok else 503)


# -- errors -----------------------------------------------------------------------------


def _error_response(err: MeshError, extra: dict[str, str] | None = None) -> JSONResponse:
    headers = {k: v for k, v in err.headers.items() if k.startswith("x-ratelimit-")}
    if err.retry_after is not None:
        headers["retry-after"] = str(max(1, int(err.retry_after + 0.999)))
    if err.kind is REQUEST_TIMEOUT:
        headers["connection"] = "close"  # the rest of a slow body is not waited for
    return JSONResponse(
        err.to_openai(), status_code=err.http_status, headers={**headers, **(extra or {})}
    )


async def on_mesh_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MeshError)
    return _error_response(exc)


async def on_rpc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return _error_response(from_rpc_error(exc))


async def on_client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        err = MeshError(
            f"Method {request.method} is not allowed on {request.url.path}.",
            kind=METHOD_NOT_ALLOWED,
        )
        return _error_response(err, dict(exc.headers or {}))
    if exc.status_code == 404:
        err = MeshError(
            f"Unknown request URL: {request.method} {request.url.path}. Check the URL for typos; "
            "the API lives under /v1.",
            kind=INVALID_REQUEST,
            code="unknown_url",
        )
        return JSONResponse(err.to_openai(), status_code=404)
    err = MeshError(str(exc.detail), kind=INVALID_REQUEST, code="invalid_request_error")
    return JSONResponse(
        err.to_openai(), status_code=exc.status_code, headers=dict(exc.headers or {})
    )


async def on_internal_error(request: Request, exc: Exception) -> Response:
    # Runs in ServerErrorMiddleware, outside RequestIdMiddleware: add the id here.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    err = MeshError(
        "The server had an error while processing your request. Retry, and contact support "
        "with the x-request-id if it persists."
    )
    request_id = request.scope.get("state", {}).get("request_id", "")
    return JSONResponse(err.to_openai(), status_code=500, headers={"x-request-id": request_id})


# -- app --------------------------------------------------------------------------------


def create_app(config: EdgeConfig | None = None) -> Starlette:
    config = config or EdgeConfig.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        channel = open_channel(config.router_address, peer_role="router")
        app.state.config = config
        app.state.router = RouterClient(
            channel, inference_pb2_grpc.InferenceStub(channel), health_pb2_grpc.HealthStub(channel)
        )
        try:
            yield
        finally:
            await channel.close()
            tracing.shutdown_tracing()

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *console_routes(fetch_summary),
    ]
    handlers = {
        MeshError: on_mesh_error,
        grpc.RpcError: on_rpc_error,
        ClientGone: on_client_gone,
        HTTPException: on_http_error,
        Exception: on_internal_error,
    }
    middleware = [
        Middleware(TracingMiddleware),
        Middleware(RequestIdMiddleware),
        Middleware(BodyLimitMiddleware, config.max_body_bytes, config.body_timeout_s),
    ]  # tracing outermost; the body limit inside, so its 413/408 carry x-request-id
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan
    )
    app.state.openapi = openapi_document()
    return app
