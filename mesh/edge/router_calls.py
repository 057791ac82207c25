"""Calling the router: the client, the metadata each call carries, the headers copied back,
and cancelling a call when the HTTP client goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2_grpc
from starlette.requests import Request

from mesh import tracing
from mesh.errors import Unauthenticated
from mesh.pb import inference_pb2_grpc
from mesh.wire import MD_AUTHORIZATION, MD_COPIED_PREFIXES, MD_REQUEST_ID

if TYPE_CHECKING:  # the pool builds on RouterClient: imported for the annotation only
    from mesh.edge.router_pool import RouterPool

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


@dataclass(slots=True)
class RouterClient:
    channel: grpc.aio.Channel
    inference: inference_pb2_grpc.InferenceStub
    health: health_pb2_grpc.HealthStub
    address: str = ""


class ClientGone(Exception):
    """The HTTP client disconnected before the answer was ready."""


def router_of(request: Request) -> RouterPool:
    """The edge's routers (`mesh.edge.router_pool.RouterPool`), set up by the app's lifespan."""
    return request.app.state.router


def call_metadata(request: Request) -> tuple[tuple[str, str], ...]:
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


def response_headers(md: Any) -> dict[str, str]:
    out = {}
    for key, value in md or ():
        k = key.lower()
        if isinstance(value, str) and (k.startswith(COPIED_PREFIXES) or k in COPIED_HEADERS):
            out[k] = value
    return out


async def until_disconnect(request: Request, work: Awaitable[T]) -> T:
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
