"""uvicorn's httptools protocol with the two limits uvicorn lacks: header size and header time.

uvicorn bounds idle keep-alive connections (`timeout_keep_alive`) but not a client that
sends its request line and headers slowly, nor their size (httptools has no limit; the
`h11_max_incomplete_event_size` option applies to h11 only). Here:
- the request line plus headers may total `max_header_bytes` (LLMAAS_MAX_HEADER_BYTES,
  default 16 KiB, as Node and h11): more is answered 431 and the connection closed;
- they must be complete within `header_timeout_s` (LLMAAS_HEADER_TIMEOUT_S, default 10 s) of
  the connection opening or the request starting: later, 408 and the connection closed.
Both answers are OpenAI error objects, and so is uvicorn's own 503 past `limit_concurrency`
(plain text otherwise).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mesh.errors import INVALID_REQUEST, REQUEST_TIMEOUT, MeshError, Unavailable

DEFAULT_MAX_HEADER_BYTES = 16 * 1024
DEFAULT_HEADER_TIMEOUT_S = 10.0
_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


class _HeadersTooLarge(Exception):
    pass


def limited_protocol(max_header_bytes: int, header_timeout_s: float) -> type[HttpToolsProtocol]:
    """The protocol class to pass as uvicorn's `http=`, with these limits."""

    class LimitedHttpToolsProtocol(_LimitedHttpToolsProtocol):
        pass

    LimitedHttpToolsProtocol.max_header_bytes = max_header_bytes
    LimitedHttpToolsProtocol.header_timeout_s = header_timeout_s
    return LimitedHttpToolsProtocol


class _LimitedHttpToolsProtocol(HttpToolsProtocol):
    max_header_bytes = DEFAULT_MAX_HEADER_BYTES
    header_timeout_s = DEFAULT_HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        self._oversized = False
        self._header_timer: asyncio.TimerHandle | None = None

    # -- header time ----------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request stalls behind a response still being written: end the
            # connection after that response rather than write into it.
            self.cycle.keep_alive = False
            return
        msg = (
            f"The request headers did not arrive within {self.header_timeout_s:g} s "
            "(LLMAAS_HEADER_TIMEOUT_S)."
        )
        self._refuse(408, MeshError(msg, kind=REQUEST_TIMEOUT, code="request_timeout"))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if app is service_unavailable:  # uvicorn's plain-text answer past limit_concurrency
            app = _overloaded
        super()._start_asgi_task(cycle, app)

    # -- header size ----------------------------------------------------------------

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._oversized = True
            raise _HeadersTooLarge  # the parser stops; uvicorn calls send_400_response

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if not self._oversized:
            super().send_400_response(msg)
            return
        msg = (
            f"The request line and headers exceed {self.max_header_bytes} bytes "
            "(LLMAAS_MAX_HEADER_BYTES)."
        )
        self._refuse(
            431, MeshError(msg, kind=INVALID_REQUEST, code="request_header_fields_too_large")
        )

    def _refuse(self, status: int, err: MeshError) -> None:
        self._cancel_header_timer()
        if self.transport.is_closing():
            return
        body = json.dumps(err.to_openai()).encode()
        head = (
            f"HTTP/1.1 {status} ".encode()
            + _REASONS[status]
            + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
        )
        self.transport.write(head + body)
        self.transport.close()


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    err = Unavailable(
        "The server has too many open connections (LLMAAS_HTTP_LIMIT_CONCURRENCY); retry shortly.",
        code="server_overloaded",
    )
    body = json.dumps(err.to_openai()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
