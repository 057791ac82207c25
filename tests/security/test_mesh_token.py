"""The shared mesh token on the control plane in plain mode (issue #14 point 10).

A router-like server from `mesh.rpc.build_server` with the real Registry service: workers that
dial with `mesh.rpc.open_channel` (which attaches LLMAAS_MESH_TOKEN) may announce; anyone
else gets UNAUTHENTICATED and never reaches the pool.
"""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import meshtoken, rpc, tls
from mesh.pb import admin_pb2, admin_pb2_grpc
from mesh.router import registry_service

TOKEN = "mesh-token-for-tests"
ECHO = "/test.Echo/Ping"


class FakePool:
    """What RegistryService needs of WorkerPool; records who got in."""

    def __init__(self) -> None:
        self.added: list[str] = []
        self.withdrawn: list[str] = []

    def get(self, address: str):
        return None

    async def add(self, address: str, *, static: bool, max_num_seqs: int) -> None:
        self.added.append(address)

    def withdraw(self, address: str):
        self.withdrawn.append(address)
        return object()


async def _ping(request: bytes, context) -> bytes:
    return b"pong"


@pytest.fixture
async def router(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """(port, pool) of a server built while LLMAAS_MESH_TOKEN is `request.param` (or TOKEN)."""
    monkeypatch.delenv("LLMAAS_TLS", raising=False)
    token = getattr(request, "param", TOKEN)
    if token:
        monkeypatch.setenv("LLMAAS_MESH_TOKEN", token)
    else:
        monkeypatch.delenv("LLMAAS_MESH_TOKEN", raising=False)
    pool = FakePool()
    server, health = rpc.build_server([registry_service.SERVICE_NAME, "test.Echo"])
    registry_service.add_to_server(pool, server)  # type: ignore[arg-type]
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Echo", {"Ping": grpc.unary_unary_rpc_method_handler(_ping)}
            ),
        )
    )
    port = rpc.add_port(server, "127.0.0.1", 0, "router")
    await server.start()
    await rpc.set_serving(health, [], True)
    yield port, pool
    await server.stop(None)


def _announcement(port: int = 50999) -> admin_pb2.WorkerAnnouncement:
    return admin_pb2.WorkerAnnouncement(worker_id="w", address=f"127.0.0.1:{port}")


async def test_open_channel_carries_the_token_and_may_announce(router):
    port, pool = router
    async with rpc.open_channel(f"127.0.0.1:{port}", peer_role="router") as channel:
        stub = admin_pb2_grpc.RegistryStub(channel)
        assert (await stub.Announce(_announcement(), timeout=10)).accepted
        assert (await stub.Withdraw(_announcement(), timeout=10)).accepted
    assert pool.added == ["127.0.0.1:50999"] and pool.withdrawn == ["127.0.0.1:50999"]


@pytest.mark.parametrize("metadata", [(), (("x-llmaas-mesh-token", "wrong"),)])
async def test_a_caller_without_the_token_cannot_announce(router, metadata):
    port, pool = router
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = admin_pb2_grpc.RegistryStub(channel)
        for method in (stub.Announce, stub.Withdraw):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await method(_announcement(), metadata=metadata, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "LLMAAS_MESH_TOKEN" in err.value.details()
    assert pool.added == [] and pool.withdrawn == []  # the rogue worker never got in


async def test_other_methods_and_health_stay_open(router):
    port, _pool = router
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        assert await channel.unary_unary(ECHO)(b"", timeout=10) == b"pong"
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("router", [""], indirect=True)
async def test_no_token_configured_on_loopback_keeps_working(router):
    port, pool = router
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = admin_pb2_grpc.RegistryStub(channel)
        assert (await stub.Announce(_announcement(), timeout=10)).accepted
    assert pool.added == ["127.0.0.1:50999"]


def test_token_compare_and_interceptor_selection():
    assert meshtoken.token_matches(TOKEN, TOKEN)
    assert not meshtoken.token_matches("", "")  # an unset token never matches
    assert not meshtoken.token_matches(None, TOKEN)
    assert not meshtoken.token_matches(TOKEN + "x", TOKEN)
    assert meshtoken.client_interceptors({}) == []
    assert len(meshtoken.client_interceptors({"LLMAAS_MESH_TOKEN": TOKEN})) == 4
    # Under mTLS the certificate role check is the authority: no token check installed.
    assert meshtoken.server_interceptors({"LLMAAS_TLS": "1", "LLMAAS_MESH_TOKEN": TOKEN}) == []
    [check] = meshtoken.server_interceptors({"LLMAAS_MESH_TOKEN": TOKEN})
    assert isinstance(check, meshtoken.MeshTokenInterceptor)


# -- plain gRPC allowed off loopback: workers and filter want the token on every method ------


@pytest.fixture
async def networked_worker(monkeypatch: pytest.MonkeyPatch):
    """A worker-role server as the chat worker builds it (tls.server_interceptors)."""
    monkeypatch.delenv("LLMAAS_TLS", raising=False)
    monkeypatch.setenv("LLMAAS_MESH_ALLOW_PLAIN", "1")
    monkeypatch.setenv("LLMAAS_MESH_TOKEN", TOKEN)
    server, health = rpc.build_server(["test.Echo"], role="worker")
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "test.Echo", {"Ping": grpc.unary_unary_rpc_method_handler(_ping)}
            ),
        )
    )
    port = rpc.add_port(server, "127.0.0.1", 0, "worker")  # tests listen on loopback only
    await server.start()
    await rpc.set_serving(health, [], True)
    yield port
    await server.stop(None)


async def test_networked_plain_worker_answers_token_holders_only(networked_worker: int):
    address = f"127.0.0.1:{networked_worker}"
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await channel.unary_unary(ECHO)(b"", timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING  # probes stay open
    async with rpc.open_channel(address, peer_role="worker") as channel:  # as the router dials
        assert await channel.unary_unary(ECHO)(b"", timeout=10) == b"pong"


def test_component_token_check_only_when_plain_is_allowed_off_loopback():
    networked = {"LLMAAS_MESH_ALLOW_PLAIN": "1", "LLMAAS_MESH_TOKEN": TOKEN}
    assert tls.server_interceptors("worker", {"LLMAAS_MESH_TOKEN": TOKEN}) == []  # loopback
    assert len(tls.server_interceptors("worker", networked)) == 1
    assert len(tls.server_interceptors("filter", networked)) == 1
    assert tls.server_interceptors("router", networked) == []  # Inference/Admin use keys
