"""gRPC plumbing shared by every mesh process: server bootstrap and channels.

`build_server(names, role=...)` is the one server bootstrap of the router, the filter and
both workers: caller checks, tracing, error mapping, health and reflection, installed here
and nowhere else; `add_port` binds it; `serve_until_signal` runs it until SIGTERM/SIGINT
and stops it within a bound; `open_channel` dials a peer. TLS/mTLS credentials plug in here.

Trust and limits, the same for every server and channel made here:
  - message limit `mesh.config.grpc_message_limit()` (LLMAAS_MAX_BODY_BYTES + 1 MiB) both ways;
  - servers without SO_REUSEPORT: a port already taken is a `BindError` naming it;
  - `add_port` refuses plain gRPC on a non-loopback host (`mesh.tls.check_grpc_bind`);
  - the shared mesh token (`mesh.meshtoken`): sent on every call, checked on the control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer as AioHealthServicer
from grpc_reflection.v1alpha import reflection

from mesh import meshtoken, tls, tracing
from mesh.config import grpc_message_limit
from mesh.errors import as_mesh_error
from mesh.interceptor import wrap_handler

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


class BindError(RuntimeError, OSError):
    """A gRPC server could not listen on its address (port taken by another process).

    An OSError too: what the chat worker raised for it before the bootstraps were merged."""


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
    """The one error path of every mesh server: a MeshError, or an exception registered in
    `mesh.errors.KIND_BY_ERROR` (the worker engine's), becomes its gRPC status with trailing
    metadata (`llmaas-error-code`, `-param`, `retry-after`...); anything else a logged
    INTERNAL that names the method and nothing of the error."""

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        return wrap_handler(handler, _mapping_errors(handler_call_details.method))


async def abort_with(context: grpc.aio.ServicerContext, err: BaseException) -> None:
    """Aborts the call with `err`'s status and metadata (a MeshError or a registered one)."""
    mesh_err = as_mesh_error(err)
    if mesh_err is None:
        raise TypeError(f"{type(err).__name__} has no entry in mesh.errors.KIND_BY_ERROR")
    await context.abort(
        mesh_err.kind.grpc_code, mesh_err.message, trailing_metadata=mesh_err.trailing_metadata()
    )


def _mapping_errors(method: str):
    @contextlib.asynccontextmanager
    async def around(context) -> AsyncIterator[None]:
        try:
            yield
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as exc:  # noqa: BLE001 - the one place that maps everything
            if as_mesh_error(exc) is not None:
                await abort_with(context, exc)
            log.exception("unhandled error in %s", method, exc_info=exc)
            await context.abort(
                grpc.StatusCode.INTERNAL, f"internal error in {method}; see server logs"
            )

    return around


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
    role: str | None = None,
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, AioHealthServicer]:
    """The grpc.aio server of a mesh component, with everything every server needs.

    In order, each call passes: the mesh-token check of the control plane (plain mode,
    `mesh.meshtoken`); with a `role`, that role's caller check (`tls.server_interceptors`:
    the certificate role under mTLS, the mesh token on every method when plain gRPC is
    allowed off loopback); `interceptors` (tests); a tracing span; the error mapping
    (`ErrorInterceptor`). Options: the message limits and SO_REUSEPORT=0 (`server_options`).
    Services: health (NOT_SERVING until `set_serving`) and reflection. Bind with `add_port`.
    """
    role_checks = tls.server_interceptors(role) if role is not None else []
    server = grpc.aio.server(
        interceptors=[
            *meshtoken.server_interceptors(),
            *role_checks,
            *interceptors,
            tracing.TracingInterceptor(),
            ErrorInterceptor(),
        ],
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
    on_ready: Callable[[], Awaitable[None]] | None = None,
    on_stop: Callable[[], Awaitable[None]] | None = None,
    stop_bound_s: float | None = None,
    grace_s: float = 5.0,
    slack_s: float = 2.0,
    start: bool = True,
) -> bool:
    """Runs `server` until SIGTERM/SIGINT, then stops it within a bound (`stop_bounded`).

    `start=False` for a server its component has started already. `on_ready` runs once the
    signals are caught (e.g. announce to the router); a second signal cuts the stop short.
    Returns True when the stop was graceful.
    """
    if start:
        await server.start()
    stop = asyncio.Event()
    _on_signals(stop.set)
    if on_ready is not None:
        await on_ready()
    await stop.wait()
    hurry = asyncio.Event()
    _on_signals(hurry.set)
    return await stop_bounded(
        server, on_stop, hurry=hurry, bound_s=stop_bound_s, grace_s=grace_s, slack_s=slack_s
    )


async def stop_bounded(
    server: grpc.aio.Server,
    on_stop: Callable[[], Awaitable[None]] | None,
    *,
    hurry: asyncio.Event,
    bound_s: float | None = None,
    grace_s: float = 5.0,
    slack_s: float = 2.0,
) -> bool:
    """The graceful stop: `on_stop()` (a drain that ends by stopping the server), or without
    one `server.stop(grace_s)`. It gets `bound_s` (None: no bound) and ends at once when
    `hurry` is set; then the server is stopped without grace (within `slack_s`) whatever
    its own stop waits for (idle streams, a stuck engine). True when it finished in time."""
    graceful = on_stop() if on_stop is not None else server.stop(grace_s)
    work = asyncio.ensure_future(graceful)
    cut = asyncio.ensure_future(hurry.wait())
    done, _ = await asyncio.wait({work, cut}, timeout=bound_s, return_when=asyncio.FIRST_COMPLETED)
    cut.cancel()
    if work in done:
        work.result()
        return True
    work.cancel()
    log.warning("the stop did not finish in time: stopping now")
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(server.stop(None), slack_s)
    return False


def _on_signals(callback: Callable[[], object]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, callback)
