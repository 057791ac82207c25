"""Request size and time limits at the edge, before any endpoint code runs.

`BodyLimitMiddleware` (pure ASGI, so streaming responses are untouched):
- a `Content-Length` over the limit (`LLMAAS_MAX_BODY_BYTES`, default 8 MiB) is answered 413
  at once, without reading the body;
- a chunked body is counted as it arrives and refused with 413 when it passes the limit;
- the whole body must arrive within `LLMAAS_BODY_TIMEOUT_S` (default 30 s) of the endpoint's
  first read, or the answer is 408 (a client that trickles its body cannot hold a slot).
Both answers are OpenAI error objects (`invalid_request_error`, code `request_too_large` /
`request_timeout`).
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mesh.errors import MeshError, RequestTimeout, RequestTooLarge

DEFAULT_BODY_TIMEOUT_S = 30.0


def too_large(limit: int, length: int | None = None) -> RequestTooLarge:
    size = f"{length} bytes" if length is not None else f"more than {limit} bytes"
    return RequestTooLarge(
        f"The request body is {size}; this server accepts at most {limit} bytes "
        "(LLMAAS_MAX_BODY_BYTES). Send a shorter prompt or fewer inputs.",
        code="request_too_large",
    )


async def send_error(send: Send, err: MeshError, *, close: bool = False) -> None:
    body = json.dumps(err.to_openai()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": err.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await send_error(send, too_large(limit, declared))
            return
        received, complete, started = 0, False, False
        deadline: float | None = None
        loop = asyncio.get_running_loop()

        async def limited_receive() -> Message:
            nonlocal received, complete, deadline
            if complete:  # body done: later reads only wait for the disconnect
                return await receive()
            if deadline is None:
                deadline = loop.time() + self.body_timeout_s
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise RequestTimeout(
                    f"The request body did not arrive within {self.body_timeout_s:g} s "
                    "(LLMAAS_BODY_TIMEOUT_S); send it in one go.",
                    code="request_timeout",
                ) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
                complete = not message.get("more_body", False)
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except (RequestTooLarge, RequestTimeout) as err:
            # Normally the app's MeshError handler answers; this covers code that reads the
            # body outside it.
            if started:
                raise
            await send_error(send, err, close=isinstance(err, RequestTimeout))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP parser refuses it before we get here
    return None
