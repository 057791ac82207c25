"""gRPC plumbing shared by every mesh process: server bootstrap and channels.

`build_server` adds the error interceptor, the standard health service and reflection;
`serve_until_signal` runs it until SIGTERM/SIGINT and stops gracefully; `open_channel`
dials a peer. TLS/mTLS credentials plug in here and nowhere else.

Trust and limits, the same for every server and channel made here:
  - message limit `mesh.config.grpc_message_limit()` (LLMAAS_MAX_BODY_BYTES + 1 MiB) both ways;
  - servers without SO_REUSEPORT: a port already taken is a `BindError` naming it;
  - `add_port` refuses plain gRPC on a non-loopback host (`mesh.tls.check_grpc_bind`);
  - the shared mesh token (`mesh.meshtoken`): sent on every call, checked on the control plane.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer
from grpc_reflection.v1alpha import reflection

from mesh import meshtoken
from mesh.config import grpc_message_limit
from mesh.errors import MeshError

log = logging.getLogger(__name__)

# Tokens flow as many small messages: keep them moving (no Nagle-style batching).
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)

# Where each role's port is chosen, for the "port in use" error.
PORT_SETTINGS = {
    "router": "LLMAAS_ROUTER_PORT",
    "filter": "LLMAAS_FILTER_PORT",
    "worker": "LLMAAS_WORKER_PORT (or --port)",
}


class BindError(RuntimeError):
    """A gRPC server could not listen on its address (port taken by another process)."""


def message_limit_options(environ: dict[str, str] | None = None) -> list[tuple[str, int]]:
    """One send/receive limit everywhere, sized from the edge's body limit (mesh.config)."""
    limit = grpc_message_limit(environ)
    return [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
    ]


def server_options(environ: dict[str, str] | None = None) -> list[tuple[str, int]]:
    """Options of every mesh gRPC server.

    SO_REUSEPORT off (gRPC turns it on by default on Linux): a second mesh started on the
    same ports must fail to bind, not silently share them with the first (split brain).
    """
    return [*message_limit_options(environ), *KEEPALIVE_OPTIONS, ("grpc.so_reuseport", 0)]


def channel_options(environ: dict[str, str] | None = None) -> list[tuple[str, int]]:
    """Options of every mesh channel (`open_channel`); callers may add their own."""
    return [*message_limit_options(environ), *KEEPALIVE_OPTIONS]


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Turns MeshError into a status with metadata; anything else into a logged INTERNAL."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


async def abort_with(context: grpc.aio.ServicerContext, err: MeshError) -> None:
    await context.abort(err.kind.grpc_code, err.message, trailing_metadata=err.trailing_metadata())


async def _handle(exc: BaseException, context, method: str) -> None:
    if isinstance(exc, MeshError):
        await abort_with(context, exc)
    log.exception("unhandled error in %s", method, exc_info=exc)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see server logs")


def _wrap_unary(fn, method: str):
    async def wrapper(request, context):
        try:
            return await fn(request, context)
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place that maps everything
            await _handle(exc, context, method)

    return wrapper


def _wrap_stream(fn, method: str):
    async def wrapper(request, context):
        try:
            async for item in fn(request, context):
                yield item
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001
            await _handle(exc, context, method)

    return wrapper


class ListingHealthServicer(AioHealthServicer):
    """grpcio's asyncio health servicer plus `List` (health v1.1), which it leaves unimplemented.

    The router publishes per-component readiness as named statuses; `List` lets a caller
    (the edge's /health) read them all without knowing the names in advance.
    """

    async def List(self, request, context) -> health_pb2.HealthListResponse:
        # _server_status is the servicer's own name -> status table (no public accessor).
        statuses = {
            name: health_pb2.HealthCheckResponse(status=status)
            for name, status in self._server_status.items()
        }
        return health_pb2.HealthListResponse(statuses=statuses)


def build_server(
    service_names: Iterable[str],
    *,
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, AioHealthServicer]:
    """A grpc.aio server with error mapping, health (NOT_SERVING until set_serving) and reflection.

    The mesh-token check (control-plane methods, plain mode) runs before `interceptors`; the
    message limits and SO_REUSEPORT=0 come from `server_options`.
    """
    server = grpc.aio.server(
        interceptors=[*meshtoken.server_interceptors(), *interceptors, ErrorInterceptor()],
        options=server_options(),
    )
    # The asyncio health servicer: the sync one cannot be awaited through interceptors.
    health_servicer = ListingHealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = list(service_names)
    reflection.enable_server_reflection(
        [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    return server, health_servicer


def add_port(server: grpc.aio.Server, host: str, port: int, role: str) -> int:
    """Binds host:port (port 0 picks a free one); returns the bound port.

    Refuses plain gRPC on a non-loopback host (`tls.check_grpc_bind`, a ConfigError), and
    raises BindError naming the address and the setting to change when the port is taken.
    """
    from mesh import tls  # noqa: PLC0415 - optional TLS, imported lazily

    tls.check_grpc_bind(host, role)
    creds = tls.server_credentials(role)
    address = f"{host}:{port}"
    try:
        bound = (
            server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
        )
    except RuntimeError as exc:  # grpcio raises "Failed to bind to address ..."
        raise _bind_error(address, role) from exc
    if bound == 0:  # older grpcio returned 0 instead of raising
        raise _bind_error(address, role)
    return bound


def _bind_error(address: str, role: str) -> BindError:
    setting = PORT_SETTINGS.get(role, "its port setting")
    return BindError(
        f"{role} cannot listen on {address}: the port is already in use (is another mesh or "
        f"{role} running?) or the host is not an address of this machine. Stop the other "
        f"process, or choose another port with {setting}."
    )


async def set_serving(
    health_servicer: AioHealthServicer, names: Iterable[str], serving: bool
) -> None:
    """Marks the server ("") and each named service SERVING or NOT_SERVING."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in ["", *names]:
        await health_servicer.set(name, status)


def open_channel(
    address: str, *, peer_role: str, options: Iterable[tuple[str, object]] = ()
) -> grpc.aio.Channel:
    """A channel to a mesh peer; mTLS when the mesh runs secured. `options` add channel args.

    Every call carries the mesh token (LLMAAS_MESH_TOKEN) when one is set.
    """
    from mesh import tls  # noqa: PLC0415

    creds = tls.channel_credentials(peer_role)
    interceptors = meshtoken.client_interceptors() or None
    base = [*channel_options(), *list(options)]
    if creds is None:
        return grpc.aio.insecure_channel(address, options=base, interceptors=interceptors)
    return grpc.aio.secure_channel(
        address, creds, options=[*base, *tls.channel_options(peer_role)], interceptors=interceptors
    )


async def serve_until_signal(
    server: grpc.aio.Server,
    *,
    grace_s: float = 5.0,
    on_stop: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Runs until SIGTERM/SIGINT; then `on_stop` (e.g. drain) and a graceful stop."""
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    if on_stop is not None:
        await on_stop()
    await server.stop(grace_s)
