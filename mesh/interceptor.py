"""The one way a mesh server interceptor wraps a gRPC handler.

grpc.aio gives an interceptor the handler, not the call: to run code around the call
(a role check, error mapping, a span) the handler must be rebuilt around a new function of
the same shape. `wrap_handler` does that once for every interceptor, for all four call
kinds; the interceptor only says what runs around the call, as an async context manager
`around(context)` entered before the handler and left after it (a stream: after its last
message), which sees the handler's exception.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import grpc

Around = Callable[[Any], AbstractAsyncContextManager[None]]
# A check before the call: None lets it through, (code, message) refuses it.
Check = Callable[[Any], "tuple[grpc.StatusCode, str] | None"]

_FACTORIES = {
    "unary_unary": grpc.unary_unary_rpc_method_handler,
    "unary_stream": grpc.unary_stream_rpc_method_handler,
    "stream_unary": grpc.stream_unary_rpc_method_handler,
    "stream_stream": grpc.stream_stream_rpc_method_handler,
}


def wrap_handler(handler: grpc.RpcMethodHandler | None, around: Around):
    """`handler` with `around(context)` around every call; None stays None."""
    if handler is None:
        return None
    for kind, factory in _FACTORIES.items():
        fn = getattr(handler, kind)
        if fn is not None:
            return factory(
                _wrap(fn, around),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def guard_handler(handler: grpc.RpcMethodHandler | None, check: Check):
    """`handler` refused with check's (code, message) when the check says so."""

    @asynccontextmanager
    async def around(context) -> AsyncIterator[None]:
        if denial := check(context):
            await context.abort(*denial)
        yield

    return wrap_handler(handler, around)


def _wrap(fn: Callable, around: Around) -> Callable:
    """Same shape as `fn`: an async generator for a stream, a coroutine otherwise.

    Mesh servers are grpc.aio servers whose handlers are all async (health and reflection
    included); a plain function is called on the loop, inside `around` like the others.
    """
    if inspect.isasyncgenfunction(fn):

        async def agen(request, context):
            async with around(context):
                async for item in fn(request, context):
                    yield item

        return agen

    async def coro(request, context):
        async with around(context):
            result = fn(request, context)
            return await result if inspect.isawaitable(result) else result

    return coro
