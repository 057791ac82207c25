"""Several routers behind one edge (LLMAAS_ROUTER_ADDRS): the address list, round robin,
failover before the first chunk and never after, and /health over every router. Real gRPC
servers (the fake router) and a real edge; a "dead" router is a port nothing listens on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from concurrent import futures

import grpc
import httpx
import pytest

from mesh.config import ConfigError, parse_addresses, router_addresses
from mesh.edge.config import EdgeConfig
from mesh.edge.router_pool import RouterPool, retryable
from mesh.pb import inference_pb2, inference_pb2_grpc
from tests.mesh.edge.conftest import serve_edge
from tests.mesh.edge.fakes import AUTH, FakeRouter, fake_router
from tools.launcher.ports import free_port


def chat(model: str = "smollm2:135m", stream: bool = False) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    }


# -- the address list ---------------------------------------------------------------------


def test_router_addrs_wins_over_the_older_names_and_keeps_order_without_duplicates():
    env = {
        "LLMAAS_ROUTER_ADDRS": " 10.0.0.2:50051, router-b:50051 ,10.0.0.2:50051,",
        "LLMAAS_ROUTER_ADDR": "old:1",
        "LLMAAS_ROUTER_ADDRESS": "older:2",
    }
    assert router_addresses(env) == ("10.0.0.2:50051", "router-b:50051")


def test_the_older_names_still_work_in_order_then_the_default():
    assert router_addresses({"LLMAAS_ROUTER_ADDR": "a:1,b:2"}) == ("a:1", "b:2")
    assert router_addresses({"LLMAAS_ROUTER_ADDRESS": "w:3"}) == ("w:3",)
    assert router_addresses({"LLMAAS_ROUTER_ADDRESS": "w:3"}, legacy=("LLMAAS_ROUTER_ADDR",)) == ()
    assert router_addresses({}, default="127.0.0.1:50051") == ("127.0.0.1:50051",)


def test_grpc_targets_pass_through_and_a_bad_entry_names_its_variable():
    assert parse_addresses("dns:///router.llmaas:50051,[::1]:50051") == (
        "dns:///router.llmaas:50051",
        "[::1]:50051",
    )
    for bad in ("router", "router:", ":50051", "router:99999", "router:http"):
        with pytest.raises(ConfigError, match="LLMAAS_ROUTER_ADDRS"):
            router_addresses({"LLMAAS_ROUTER_ADDRS": f"ok:1,{bad}"})


def test_edge_config_reads_the_list_and_the_old_single_address():
    both = EdgeConfig.from_env({"LLMAAS_ROUTER_ADDRS": "a:1,b:2", "LLMAAS_ROUTER_ADDR": "c:3"})
    assert both.routers == ("a:1", "b:2")
    assert EdgeConfig.from_env({"LLMAAS_ROUTER_ADDR": "c:3"}).routers == ("c:3",)
    assert EdgeConfig.from_env({"LLMAAS_ROUTER_PORT": "4444"}).routers == ("127.0.0.1:4444",)
    assert EdgeConfig(router_address="x:9").routers == ("x:9",)


# -- the pool on its own --------------------------------------------------------------------


def test_a_call_that_finds_its_router_dead_goes_to_the_next_one():
    async def scenario(live_port: int) -> tuple[str, int]:
        dead = f"127.0.0.1:{free_port()}"
        pool = RouterPool.open([dead, f"127.0.0.1:{live_port}"])  # round robin starts at dead
        try:
            call, _, first = await pool.open_stream(
                "ChatCompletion",
                inference_pb2.ChatCompletionRequest(model="smollm2:135m"),
                metadata=tuple(AUTH_MD),
                timeout=10,
            )
            call.cancel()
            return first.text, pool.failovers
        finally:
            await pool.close()

    with fake_router() as live:
        text, failovers = asyncio.run(scenario(live.port))
    assert (text, failovers) == ("Hel", 1)
    assert live.calls == 1


AUTH_MD = [("authorization", AUTH["Authorization"])]


def test_only_transport_failures_are_retryable():
    async def codes(port: int) -> list[tuple[str, bool]]:
        pool = RouterPool.open([f"127.0.0.1:{port}"])
        out = []
        try:
            for model in ("e503", "e429"):
                with contextlib.suppress(grpc.aio.AioRpcError):
                    await pool.unary(
                        "Embeddings",
                        inference_pb2.EmbeddingsRequest(model=model, inputs=["x"]),
                        metadata=tuple(AUTH_MD),
                        timeout=10,
                    )
                    raise AssertionError(f"{model} did not fail")
            dead = RouterPool.open([f"127.0.0.1:{free_port()}"])
            try:
                await dead.unary("ListModels", inference_pb2.ListModelsRequest(), timeout=10)
            except grpc.aio.AioRpcError as err:
                out.append((err.code().name, retryable(err)))
            finally:
                await dead.close()
            return out
        finally:
            await pool.close()

    with fake_router() as router:
        assert asyncio.run(codes(router.port)) == [("UNAVAILABLE", True)]
        assert router.calls == 2  # e503 (the router's own 503) and e429 were answered once


# -- through the edge ---------------------------------------------------------------------


@contextlib.contextmanager
def two_router_edge(dead_second: bool = False):
    with fake_router() as a, fake_router() as b:
        second = f"127.0.0.1:{free_port()}" if dead_second else f"127.0.0.1:{b.port}"
        config = {"router_addresses": (f"127.0.0.1:{a.port}", second)}
        with serve_edge(a, **config) as url:
            yield url, a, b


def test_calls_spread_over_both_routers():
    with two_router_edge() as (url, a, b):
        for _ in range(6):
            reply = httpx.post(f"{url}/v1/chat/completions", headers=AUTH, json=chat(), timeout=10)
            assert reply.status_code == 200, reply.text
    assert a.calls > 0 and b.calls > 0
    assert a.calls + b.calls == 6


def test_a_dead_router_costs_no_request_and_health_names_it():
    with two_router_edge(dead_second=True) as (url, a, _):
        for _ in range(4):
            reply = httpx.post(f"{url}/v1/chat/completions", headers=AUTH, json=chat(), timeout=10)
            assert reply.status_code == 200, reply.text
            reply = httpx.post(
                f"{url}/v1/embeddings",
                headers=AUTH,
                json={"model": "all-minilm:22m", "input": "x"},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text
        health = httpx.get(f"{url}/health", timeout=10)
    assert a.calls == 8
    assert health.status_code == 200
    statuses = sorted(health.json()["routers"].values())
    assert statuses == ["SERVING", "unreachable (UNAVAILABLE)"]


def test_the_routers_own_503_is_the_answer_not_retried():
    with two_router_edge() as (url, a, b):
        reply = httpx.post(f"{url}/v1/chat/completions", headers=AUTH, json=chat("e503"))
    assert reply.status_code == 503
    assert a.calls + b.calls == 1


def test_a_stream_cut_after_its_first_chunk_ends_with_an_error_and_is_not_restarted():
    with two_router_edge() as (url, a, b):
        with httpx.stream(
            "POST",
            f"{url}/v1/chat/completions",
            headers=AUTH,
            json=chat("midfail", stream=True),
            timeout=10,
        ) as reply:
            events = [line[6:] for line in reply.iter_lines() if line.startswith("data: ")]
        plain = httpx.post(f"{url}/v1/chat/completions", headers=AUTH, json=chat("midfail"))
    assert reply.status_code == 200
    texts = [
        c["choices"][0]["delta"].get("content")
        for e in events
        if e != "[DONE]" and "choices" in (c := json.loads(e))
    ]
    assert "Hel" in texts and "lo" not in texts
    assert any("error" in json.loads(e) for e in events if e != "[DONE]")
    assert plain.status_code == 503
    assert a.calls + b.calls == 2  # each request reached one router once


# -- one target naming several routers (a headless Service's DNS name in Kubernetes) -----


@contextlib.contextmanager
def fake_router_at(host: str, port: int):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    fake = FakeRouter()
    inference_pb2_grpc.add_InferenceServicer_to_server(fake, server)
    server.add_insecure_port(f"{host}:{port}")
    server.start()
    try:
        yield fake, server
    finally:
        server.stop(0)


def test_one_multi_address_target_is_balanced_and_fails_over_within_its_channel():
    port = free_port()

    async def ask(pool: RouterPool, n: int) -> list[str]:
        out = []
        for _ in range(n):
            reply, _ = await pool.unary(
                "Embeddings",
                inference_pb2.EmbeddingsRequest(model="m", inputs=["x"]),
                metadata=tuple(AUTH_MD),
                timeout=10,
            )
            out.append(reply.model)
        return out

    async def scenario(second_server) -> tuple[list[str], list[str]]:
        pool = RouterPool.open([f"ipv4:127.0.0.1:{port},127.0.0.2:{port}"])
        try:
            before = await ask(pool, 6)
            second_server.stop(0)  # one router gone: its calls go to the other address
            after = await ask(pool, 6)
            return before, after
        finally:
            await pool.close()

    with (
        fake_router_at("127.0.0.1", port) as (a, _),
        fake_router_at("127.0.0.2", port) as (
            b,
            server_b,
        ),
    ):
        before, after = asyncio.run(scenario(server_b))
        calls_b = b.calls
    assert before == ["m"] * 6 and after == ["m"] * 6
    assert a.calls > 0 and calls_b > 0  # round robin over both addresses
    assert a.calls + calls_b == 12
