"""A worker announces itself to every router of LLMAAS_ROUTER_ADDRS (each router must see it,
shared registry or not); the older LLMAAS_ROUTER_ADDRESS still works. Real gRPC servers."""

from __future__ import annotations

import asyncio

import grpc

from mesh.pb import admin_pb2, admin_pb2_grpc
from tools.launcher.ports import free_port
from worker.__main__ import _announce, _graceful, parse_args
from worker.announcer import Reannouncer, announce_targets
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


# -- dns targets and announcing again -----------------------------------------------------


def test_a_dns_target_stands_for_every_address_it_resolves_to():
    port = free_port()
    targets = asyncio.run(
        announce_targets(f"dns:///localhost:{port},127.0.0.1:5,dns:///no-such-host.invalid:7")
    )
    assert f"127.0.0.1:{port}" in targets
    assert f"dns:///localhost:{port}" not in targets
    assert targets[-2:] == ["127.0.0.1:5", "dns:///no-such-host.invalid:7"]  # kept: unresolved


async def _announced_again_then_withdrawn() -> list[tuple[str, str]]:
    server = grpc.aio.server()
    registry = Registry()
    admin_pb2_grpc.add_RegistryServicer_to_server(registry, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    config = WorkerConfig(worker_id="w", router_address=f"dns:///localhost:{port}")
    again = Reannouncer(lambda: _announce(config, Served(), 50999, "Announce"), interval_s=0.01)

    class Stopping:
        async def drain_and_stop(self, timeout_s: float) -> None:
            registry.seen.append(("drained", ""))

    try:
        await _announce(config, Served(), 50999, "Announce")
        again.start()
        for _ in range(3000):  # bounded: until it was told again twice
            if len(registry.seen) >= 3:
                break
            await asyncio.sleep(0.01)
        await _graceful(Stopping(), config, Served(), 50999, before=again.stop)()
        await asyncio.sleep(0.1)  # the repeats were cancelled: nothing more arrives
    finally:
        await server.stop(None)
    return registry.seen


def test_the_worker_is_told_again_until_it_withdraws():
    seen = asyncio.run(_announced_again_then_withdrawn())
    kinds = [kind for kind, _ in seen]
    assert kinds[-2:] == ["Withdraw", "drained"]
    assert kinds[:-2] == ["Announce"] * (len(kinds) - 2) and len(kinds) >= 5
