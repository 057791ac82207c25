"""mTLS between mesh components and TLS 1.3 at the edge, with a throwaway PKI."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from mesh import rpc, tls
from tools.ops.certs import ensure_dev_pki

ECHO = "/test.Echo/Ping"
ECHO_STREAM = "/test.Echo/Count"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_dev_pki(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def rogue_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Same role names, another CA."""
    return ensure_dev_pki(tmp_path_factory.mktemp("rogue"), roles=("router",))


@pytest.fixture
def mesh_env(pki: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LLMAAS_TLS", "1")
    monkeypatch.setenv("LLMAAS_TLS_DIR", str(pki))
    return pki


async def _ping(request: bytes, context) -> bytes:
    return b"pong:" + request


async def _count(request: bytes, context):
    for i in range(3):
        yield str(i).encode()


def _echo_handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "test.Echo",
        {
            "Ping": grpc.unary_unary_rpc_method_handler(_ping),
            "Count": grpc.unary_stream_rpc_method_handler(_count),
        },
    )


@pytest.fixture
async def worker_port(mesh_env: Path):
    """A server in the worker role (callers allowed: router), mTLS via rpc.add_port."""
    server = grpc.aio.server(interceptors=tls.server_interceptors("worker"))
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    server.add_generic_rpc_handlers([_echo_handler()])
    port = rpc.add_port(server, "127.0.0.1", 0, "worker")
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    yield port
    await server.stop(None)


def _channel_as(
    role: str, port: int, monkeypatch: pytest.MonkeyPatch, peer: str = "worker"
) -> grpc.aio.Channel:
    monkeypatch.setenv("LLMAAS_TLS_ROLE", role)
    return rpc.open_channel(f"127.0.0.1:{port}", peer_role=peer)


async def _call(channel: grpc.aio.Channel) -> bytes:
    async with channel:
        return await channel.unary_unary(ECHO)(b"hi", timeout=5)


async def test_allowed_role_is_served(worker_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    channel = _channel_as("router", worker_port, monkeypatch)
    assert await _call(channel) == b"pong:hi"
    async with _channel_as("router", worker_port, monkeypatch) as ch:
        items = [m async for m in ch.unary_stream(ECHO_STREAM)(b"", timeout=5)]
    assert items == [b"0", b"1", b"2"]


async def test_disallowed_role_is_denied(worker_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for role in ("edge", "client", "admin"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _call(_channel_as(role, worker_port, monkeypatch))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    async with _channel_as("edge", worker_port, monkeypatch) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            _ = [m async for m in ch.unary_stream(ECHO_STREAM)(b"", timeout=5)]
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_health_open_to_any_mesh_certificate(
    worker_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _channel_as("edge", worker_port, monkeypatch) as ch:
        reply = await health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_plaintext_client_is_refused(worker_port: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{worker_port}") as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ch.unary_unary(ECHO)(b"hi", timeout=3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_tls_client_without_certificate_is_refused(worker_port: int, pki: Path) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes())
    options = tls.channel_options("worker")
    async with grpc.aio.secure_channel(f"127.0.0.1:{worker_port}", creds, options=options) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ch.unary_unary(ECHO)(b"hi", timeout=3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_certificate_from_another_ca_is_refused(
    worker_port: int, pki: Path, rogue_pki: Path
) -> None:
    # Trusts the real CA (so the server passes) but presents a "router" cert from a rogue CA.
    creds = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(rogue_pki / "router-key.pem").read_bytes(),
        certificate_chain=(rogue_pki / "router.pem").read_bytes(),
    )
    options = tls.channel_options("worker")
    async with grpc.aio.secure_channel(f"127.0.0.1:{worker_port}", creds, options=options) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await ch.unary_unary(ECHO)(b"hi", timeout=3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_client_checks_server_role(worker_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dialling "filter" but reaching the worker fails: the cert must name the dialled role."""
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _call(_channel_as("router", worker_port, monkeypatch, peer="filter"))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plain_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMAAS_TLS", raising=False)
    assert tls.server_credentials("router") is None
    assert tls.channel_credentials("router") is None
    assert tls.channel_options("router") == [] and tls.server_interceptors("router") == []


def test_pki_idempotent_and_private(pki: Path) -> None:
    before = {p.name: p.read_bytes() for p in pki.iterdir()}
    ensure_dev_pki(pki)
    assert {p.name: p.read_bytes() for p in pki.iterdir()} == before
    for key in pki.glob("*-key.pem"):
        assert key.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------- edge HTTPS

APP = textwrap.dedent(
    """
    import sys
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from mesh import tls

    async def hello(request):
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/", hello)])
    tls.run_uvicorn(app, "127.0.0.1", int(sys.argv[1]), log_level="warning")
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"edge exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("edge did not listen")


@pytest.fixture(scope="module")
def https_edge(pki: Path):
    port = _free_port()
    env = {"LLMAAS_TLS": "1", "LLMAAS_TLS_DIR": str(pki), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-c", APP, str(port)],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _s_client(port: int, version_flag: str, ca: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            version_flag,
            "-brief",
            "-CAfile",
            str(ca),
            "-verify_return_error",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=15,
        text=True,
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_edge_refuses_tls12_accepts_tls13(https_edge: int, pki: Path) -> None:
    old = _s_client(https_edge, "-tls1_2", pki / "ca.pem")
    assert old.returncode != 0, old.stdout + old.stderr
    new = _s_client(https_edge, "-tls1_3", pki / "ca.pem")
    assert new.returncode == 0, new.stdout + new.stderr
    assert "TLSv1.3" in new.stdout + new.stderr


def test_edge_https_with_mesh_ca(https_edge: int, pki: Path) -> None:
    reply = httpx.get(f"https://127.0.0.1:{https_edge}/", verify=str(pki / "ca.pem"), timeout=10)
    assert reply.status_code == 200 and reply.text == "hello"


def test_edge_plain_only_when_chosen(tmp_path: Path) -> None:
    assert tls.edge_ssl_kwargs("127.0.0.1", {}) == {}  # loopback development
    with pytest.raises(tls.ConfigError):
        tls.edge_ssl_kwargs("0.0.0.0", {})
    assert tls.edge_ssl_kwargs("0.0.0.0", {"LLMAAS_EDGE_TLS": "off"}) == {}
    with pytest.raises(tls.ConfigError):
        tls.edge_ssl_kwargs("127.0.0.1", {"LLMAAS_EDGE_TLS": "on"})


async def test_interceptor_with_rpc_build_server(
    mesh_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The production chain: rpc.build_server's error interceptor, then the role check."""
    server, _ = rpc.build_server(["test.Echo"], role="router")
    server.add_generic_rpc_handlers([_echo_handler()])
    port = rpc.add_port(server, "127.0.0.1", 0, "router")
    await server.start()
    try:
        for role in ("edge", "admin", "client"):
            assert await _call(_channel_as(role, port, monkeypatch, peer="router")) == b"pong:hi"
        for role in ("worker", "filter"):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await _call(_channel_as(role, port, monkeypatch, peer="router"))
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.stop(None)


def test_router_method_rules() -> None:
    (interceptor,) = tls.server_interceptors("router", {"LLMAAS_TLS": "1"})
    assert interceptor.allowed_for("/llmaas.v1.Inference/ChatCompletion") == {
        "edge",
        "admin",
        "client",
    }
    assert interceptor.allowed_for("/llmaas.v1.Admin/CreateKey") == {"admin"}
    assert interceptor.allowed_for("/llmaas.v1.Registry/Announce") == {"worker", "admin"}
