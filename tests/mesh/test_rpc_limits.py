"""mesh.rpc servers and channels: one message limit sized from the body limit, exclusive ports,
and no plain gRPC on a public address (issue #14 points 3, 9 and 10)."""

from __future__ import annotations

import grpc
import pytest

from mesh import rpc, tls
from mesh.config import ConfigError, grpc_message_limit

BODY_LIMIT = 64 * 1024  # LLMAAS_MAX_BODY_BYTES for these tests: limit = 64 KiB + 1 MiB
ECHO = "/test.Echo/Echo"
SEND = "/test.Echo/Send"


async def _echo(request: bytes, context) -> bytes:
    return request


async def _send(request: bytes, context) -> bytes:
    """Answers with as many bytes as the request's decimal number says."""
    return b"x" * int(request)


def _handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo),
            "Send": grpc.unary_unary_rpc_method_handler(_send),
        },
    )


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("LLMAAS_MAX_BODY_BYTES", str(BODY_LIMIT))
    monkeypatch.delenv("LLMAAS_TLS", raising=False)
    return grpc_message_limit()


@pytest.fixture
async def echo_port(limit: int):
    server, _health = rpc.build_server(["test.Echo"])
    server.add_generic_rpc_handlers((_handler(),))
    port = rpc.add_port(server, "127.0.0.1", 0, "test")
    await server.start()
    yield port
    await server.stop(None)


def test_options_use_the_configured_limit_and_no_reuseport(limit: int):
    server = dict(rpc.server_options())
    channel = dict(rpc.channel_options())
    for opts in (server, channel):
        assert opts["grpc.max_receive_message_length"] == limit
        assert opts["grpc.max_send_message_length"] == limit
    assert limit == BODY_LIMIT + 1024 * 1024
    assert server["grpc.so_reuseport"] == 0


async def test_a_message_under_the_limit_passes_and_one_over_is_resource_exhausted(
    echo_port: int, limit: int
):
    async with rpc.open_channel(f"127.0.0.1:{echo_port}", peer_role="test") as channel:
        echo = channel.unary_unary(ECHO)
        send = channel.unary_unary(SEND)
        under = b"a" * (limit - 16)
        assert await echo(under, timeout=30) == under
        assert len(await send(str(limit - 16).encode(), timeout=30)) == limit - 16
        # Client side: the channel refuses to send it.
        with pytest.raises(grpc.aio.AioRpcError) as sent:
            await echo(b"a" * (limit + 1), timeout=30)
        assert sent.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Server side: the server refuses to send an answer over the limit.
        with pytest.raises(grpc.aio.AioRpcError) as answered:
            await send(str(limit + 1).encode(), timeout=30)
        assert answered.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Server side: a peer with larger limits still cannot make the server take more.
    big = [("grpc.max_send_message_length", 4 * limit)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{echo_port}", options=big) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as received:
            await channel.unary_unary(ECHO)(b"a" * (limit + 1), timeout=30)
        assert received.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_second_server_on_the_same_port_fails_with_a_clear_error(echo_port: int):
    second, _ = rpc.build_server(["test.Echo"])
    with pytest.raises(rpc.BindError) as err:
        rpc.add_port(second, "127.0.0.1", echo_port, "router")
    message = str(err.value)
    assert f"127.0.0.1:{echo_port}" in message
    assert "already in use" in message and "LLMAAS_ROUTER_PORT" in message
    await second.stop(None)
    # The first one keeps serving.
    async with rpc.open_channel(f"127.0.0.1:{echo_port}", peer_role="test") as channel:
        assert await channel.unary_unary(ECHO)(b"still here", timeout=30) == b"still here"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "mesh.example"])
async def test_plain_grpc_on_a_public_address_is_refused(
    host: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("LLMAAS_TLS", raising=False)
    monkeypatch.delenv("LLMAAS_MESH_ALLOW_PLAIN", raising=False)
    server = grpc.aio.server()
    with pytest.raises(ConfigError, match="LLMAAS_TLS=1"):
        rpc.add_port(server, host, 0, "router")  # refused before any bind


def test_plain_on_a_private_network_needs_the_opt_in_and_a_token():
    with pytest.raises(ConfigError, match="LLMAAS_MESH_TOKEN"):
        tls.check_grpc_bind("0.0.0.0", "router", {"LLMAAS_MESH_ALLOW_PLAIN": "1"})
    tls.check_grpc_bind(
        "0.0.0.0", "router", {"LLMAAS_MESH_ALLOW_PLAIN": "1", "LLMAAS_MESH_TOKEN": "t"}
    )
    tls.check_grpc_bind("0.0.0.0", "router", {"LLMAAS_TLS": "1"})  # mTLS: any address


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]"])
def test_loopback_without_token_is_allowed_with_a_warning(host: str, caplog):
    tls.check_grpc_bind(host, "router", {})
    assert "LLMAAS_MESH_TOKEN" in caplog.text
