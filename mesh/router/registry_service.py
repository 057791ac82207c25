"""The `Registry` gRPC service: workers announce themselves to the router and withdraw.

`Announce` adds the worker to the pool (or re-admits a known one) and probes it at once:
it enters rotation when its own `Info` and standard health check say so; the models in
the announcement are only a hint (what a worker is sent is decided by its `Info`, never
by what anyone claims). `Withdraw` takes it out of rotation immediately: a worker calls it
on SIGTERM *before* it starts refusing new sequences, so no request races the drain.

A worker that announces `0.0.0.0:port` (listening on every interface) is dialled at the
address the announcement came from.
"""

from __future__ import annotations

import ipaddress
import logging

import grpc

from mesh.errors import InvalidRequest
from mesh.pb import admin_pb2, admin_pb2_grpc
from mesh.router.workers import WorkerPool

log = logging.getLogger(__name__)

SERVICE_NAME = admin_pb2.DESCRIPTOR.services_by_name["Registry"].full_name
_UNSPECIFIED_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def _peer_host(context: grpc.aio.ServicerContext) -> str:
    """`ipv4:10.0.0.7:51234` / `ipv6:[::1]:51234` -> the host part, bracketed for IPv6."""
    peer = context.peer() or ""
    kind, _, rest = peer.partition(":")
    host = rest.rsplit(":", 1)[0] if kind in ("ipv4", "ipv6") else ""
    host = host.strip("[]")
    if not host:
        return ""
    return f"[{host}]" if ":" in host else host


def dial_address(announced: str, context: grpc.aio.ServicerContext) -> str:
    host, sep, port = announced.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"address must be host:port, got {announced!r}", param="address")
    if host in _UNSPECIFIED_HOSTS:
        host = _peer_host(context)
        if not host:
            raise InvalidRequest(
                f"address {announced!r} names no host and the caller's address is unknown; "
                "announce a reachable host:port",
                param="address",
            )
    else:
        if _is_unspecified_ip(host):
            raise InvalidRequest(f"address {announced!r} is not dialable", param="address")
    return f"{host}:{port}"


def _is_unspecified_ip(host: str) -> bool:
    """0.0.0.0 or [::]; a host name is never unspecified."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


class RegistryService(admin_pb2_grpc.RegistryServicer):
    def __init__(self, pool: WorkerPool) -> None:
        self._pool = pool

    async def Announce(
        self, request: admin_pb2.WorkerAnnouncement, context
    ) -> admin_pb2.AnnounceResponse:
        address = dial_address(request.address, context)
        known = self._pool.get(address) is not None
        await self._pool.add(address, static=False, max_num_seqs=max(0, request.max_num_seqs))
        log.info(
            "worker %s announced at %s (models %s, capacity %d)%s",
            request.worker_id or "?",
            address,
            list(request.models),
            request.max_num_seqs,
            " (known)" if known else "",
        )
        return admin_pb2.AnnounceResponse(accepted=True)

    async def Withdraw(
        self, request: admin_pb2.WorkerAnnouncement, context
    ) -> admin_pb2.AnnounceResponse:
        address = dial_address(request.address, context)
        handle = self._pool.withdraw(address)
        log.info(
            "worker %s at %s withdrew%s",
            request.worker_id or "?",
            address,
            "" if handle else " (unknown address)",
        )
        return admin_pb2.AnnounceResponse(accepted=handle is not None)


def add_to_server(pool: WorkerPool, server: grpc.aio.Server) -> RegistryService:
    service = RegistryService(pool)
    admin_pb2_grpc.add_RegistryServicer_to_server(service, server)
    return service
