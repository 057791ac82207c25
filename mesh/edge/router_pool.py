"""The routers behind the edge (LLMAAS_ROUTER_ADDRS): one channel per address, each router's
gRPC health watched, calls spread round robin over the healthy ones, and failover.

Failover: a call that fails UNAVAILABLE before its router answered anything (refused
connection, reset, a router killed mid-call) goes to the next router. Once a chunk was
relayed to the client a call is never restarted: the client would see text twice, so a
stream cut after its first token ends with an error. A status the router chose itself
(its errors carry `llmaas-error-code`, e.g. no worker, limits fail closed) is the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.edge.router_calls import RouterClient
from mesh.edge.streaming import read_chunk
from mesh.errors import MD_ERROR_CODE
from mesh.pb import inference_pb2, inference_pb2_grpc
from mesh.rpc import open_channel

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
HEALTH_INTERVAL_S = 1.0
# Round robin over every address a target resolves to (dns:///router.<ns>.svc:50051 names
# each router pod behind a headless Service; gRPC's default would pin one). A router back
# from a restart is reconnected within seconds (the default backoff grows to 2 minutes).
CHANNEL_OPTIONS = (
    ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]})),
    ("grpc.initial_reconnect_backoff_ms", 500),
    ("grpc.max_reconnect_backoff_ms", 5000),
)


def retryable(err: grpc.aio.AioRpcError) -> bool:
    """UNAVAILABLE from the transport, not from the router's own error path."""
    answered = any(key == MD_ERROR_CODE for key, _ in err.trailing_metadata() or ())
    return err.code() == grpc.StatusCode.UNAVAILABLE and not answered


class RouterPool:
    def __init__(
        self,
        clients: Sequence[RouterClient],
        *,
        interval_s: float = HEALTH_INTERVAL_S,
        timeout_s: float = 2.0,
    ) -> None:
        if not clients:
            raise ValueError("a router pool needs at least one router")
        self.clients = list(clients)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        # Optimistic until the first check: a router is tried before it is known to be down.
        self.healthy = {c.address: True for c in self.clients}
        self.failovers = 0  # calls sent to another router after a transport failure
        self._turn = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def open(cls, addresses: Iterable[str], **kwargs: Any) -> RouterPool:
        clients = []
        for address in addresses:
            channel = open_channel(address, peer_role="router", options=CHANNEL_OPTIONS)
            clients.append(
                RouterClient(
                    channel,
                    inference_pb2_grpc.InferenceStub(channel),
                    health_pb2_grpc.HealthStub(channel),
                    address=address,
                )
            )
        return cls(clients, **kwargs)

    def start(self) -> None:
        """Watches each router's health (one router: nothing to choose, nothing watched)."""
        if len(self.clients) > 1:
            self._tasks = [asyncio.create_task(self._watch(c)) for c in self.clients]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client in self.clients:
            await client.channel.close()

    def candidates(self) -> list[RouterClient]:
        """Every router once, in the order to try: the healthy ones round robin, then the
        others (one marked down may be back; trying it beats refusing the request). A single
        target is tried twice: its channel's round robin sends the retry to its next address."""
        if len(self.clients) == 1:
            return self.clients * 2
        start = next(self._turn) % len(self.clients)
        ring = self.clients[start:] + self.clients[:start]
        return [c for c in ring if self.healthy[c.address]] + [
            c for c in ring if not self.healthy[c.address]
        ]

    def _failed(self, client: RouterClient, err: grpc.aio.AioRpcError) -> None:
        self.healthy[client.address] = False
        self.failovers += 1
        log.warning("router %s unavailable (%s); trying the next one", client.address, err.code())

    async def unary(self, method: str, message: Any, **kwargs: Any) -> tuple[Any, Any]:
        """(reply, call) of `method` on the first router that answers."""
        last: grpc.aio.AioRpcError | None = None
        for client in self.candidates():
            call = getattr(client.inference, method)(message, **kwargs)
            try:
                return await call, call
            except grpc.aio.AioRpcError as err:
                if not retryable(err):
                    raise
                self._failed(client, err)
                last = err
            except asyncio.CancelledError:  # the HTTP client went away
                call.cancel()
                raise
        assert last is not None
        raise last

    async def open_stream(
        self, method: str, message: Any, **kwargs: Any
    ) -> tuple[grpc.aio.UnaryStreamCall, dict[str, Any], inference_pb2.CompletionChunk | None]:
        """(call, initial metadata, first chunk) of a streaming `method`, failing over until a
        router answers; the caller reads the rest from that router only."""
        last: grpc.aio.AioRpcError | None = None
        for client in self.candidates():
            call = getattr(client.inference, method)(message, **kwargs)
            try:
                md = await call.initial_metadata()
                first = await read_chunk(call)
            except grpc.aio.AioRpcError as err:
                if not retryable(err):
                    raise
                self._failed(client, err)
                last = err
                continue
            except BaseException:
                call.cancel()
                raise
            return call, md, first
        assert last is not None
        raise last

    async def health_lists(self) -> list[tuple[str, Any]]:
        """Each router's `Health.List` reply, or the AioRpcError it failed with."""

        async def one(client: RouterClient) -> Any:
            try:
                return await client.health.List(
                    health_pb2.HealthListRequest(), timeout=self._timeout_s
                )
            except grpc.aio.AioRpcError as err:
                return err

        replies = await asyncio.gather(*(one(c) for c in self.clients))
        return [(c.address, r) for c, r in zip(self.clients, replies, strict=True)]

    async def _watch(self, client: RouterClient) -> None:
        while True:
            ok = False
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await client.health.Check(
                    health_pb2.HealthCheckRequest(), timeout=self._timeout_s
                )
                ok = reply.status == SERVING
            if ok != self.healthy[client.address]:
                log.info("router %s %s", client.address, "SERVING" if ok else "down")
            self.healthy[client.address] = ok
            await asyncio.sleep(self._interval_s)
