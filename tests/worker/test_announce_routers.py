"""A worker announces itself to every router of LLMAAS_ROUTER_ADDRS (each router must see it,
shared registry or not); the older LLMAAS_ROUTER_ADDRESS still works. Real gRPC servers."""

from __future__ import annotations

import asyncio

import grpc

from mesh.pb import admin_pb2, admin_pb2_grpc
from tools.launcher.ports import free_port
from worker.__main__ import _announce, parse_args
from worker.config import WorkerConfig


class Registry(admin_pb2_grpc.RegistryServicer):
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def Announce(self, request, context):
        self.seen.append(("Announce", request.address))
        return admin_pb2.AnnounceResponse(accepted=True)

    async def Withdraw(self, request, context):
        self.seen.append(("Withdraw", request.address))
        return admin_pb2.AnnounceResponse(accepted=True)


class Served:
    model_id = "smollm2:135m"
    max_num_seqs = 16


async def _announce_to_two_routers_and_a_dead_one() -> list[list[tuple[str, str]]]:
    registries, servers, addresses = [], [], []
    for _ in range(2):
        server = grpc.aio.server()
        registry = Registry()
        admin_pb2_grpc.add_RegistryServicer_to_server(registry, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        registries.append(registry)
        servers.append(server)
        addresses.append(f"127.0.0.1:{port}")
    addresses.insert(1, f"127.0.0.1:{free_port()}")  # down: the others are told anyway
    config = WorkerConfig(worker_id="w", router_address=",".join(addresses))
    try:
        await _announce(config, Served(), 50999, "Announce", timeout_s=5)
        await _announce(config, Served(), 50999, "Withdraw", timeout_s=5)
    finally:
        for server in servers:
            await server.stop(None)
    return [r.seen for r in registries]


def test_every_router_in_the_list_is_told():
    seen = asyncio.run(_announce_to_two_routers_and_a_dead_one())
    expected = [("Announce", "127.0.0.1:50999"), ("Withdraw", "127.0.0.1:50999")]
    assert seen == [expected, expected]


def test_the_router_list_comes_from_the_new_name_or_the_old_one(monkeypatch):
    monkeypatch.delenv("LLMAAS_ROUTER_ADDRESS", raising=False)
    monkeypatch.setenv("LLMAAS_ROUTER_ADDRS", "a:1, b:2")
    assert parse_args([]).router_address == "a:1,b:2"
    monkeypatch.delenv("LLMAAS_ROUTER_ADDRS")
    monkeypatch.setenv("LLMAAS_ROUTER_ADDRESS", "c:3")
    assert parse_args([]).router_address == "c:3"
    assert parse_args(["--router-address", "d:4"]).router_address == "d:4"
    monkeypatch.delenv("LLMAAS_ROUTER_ADDRESS")
    assert parse_args([]).router_address == ""  # no router named: no announcement
