"""A small TCP proxy for fault tests: put it between a client and a server (PostgreSQL,
Redis, ...) and cut the link, then restore it, without touching the server (the machine's
shared services are never stopped).

    with NetProxy("127.0.0.1", 5432) as proxy:      # listens on 127.0.0.1:<free port>
        url = f"postgresql://127.0.0.1:{proxy.port}/db"
        proxy.cut()       # open connections dropped, new ones accepted then closed at once
        proxy.restore()   # new connections forwarded again
        proxy.freeze()    # connections stay open but nothing gets through (a silent
        proxy.thaw()      # partition: no reset, the peers only notice by timeouts)

It runs its own event loop on a daemon thread, so sync and async clients alike can use it
(a test's blocking client cannot starve it). Every wait is bounded; `stop()` (or leaving
the `with`) closes the listener and every connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

_CHUNK = 65536
_TIMEOUT_S = 10.0


class NetProxy:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.connections = 0  # accepted since start (forwarded or refused)
        self._cut = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    def __enter__(self) -> NetProxy:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def is_cut(self) -> bool:
        return self._cut

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_TIMEOUT_S)

    def start(self) -> None:
        self._thread.start()
        self._server = self._call(self._listen())
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Drops every open connection; later ones are accepted and closed at once."""
        self._cut = True
        self._call(self._drop_all())

    def restore(self) -> None:
        self._cut = False

    def freeze(self) -> None:
        """Holds every byte in both directions; nothing is closed."""
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def thaw(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._cut = True
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_TIMEOUT_S)
        self._loop.close()

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._accept, self.host, 0)

    async def _drop_all(self) -> None:
        for writer in list(self._links):
            writer.transport.abort()  # a reset, as when the network goes away
        self._links.clear()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._drop_all()
        self._flowing.set()  # held pipes go on, find their links closed and end

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*self.target), _TIMEOUT_S
            )
        except OSError:
            writer.transport.abort()
            return
        self._links.update((writer, up_writer))
        await asyncio.gather(
            _pipe(reader, up_writer, self._flowing), _pipe(up_reader, writer, self._flowing)
        )
        self._links.difference_update((writer, up_writer))


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    """Copies one direction until EOF or an error, then closes the other side too."""
    with contextlib.suppress(OSError, asyncio.CancelledError):
        while data := await reader.read(_CHUNK):
            await flowing.wait()  # frozen: held here (stop() aborts the link)
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
