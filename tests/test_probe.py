"""`python -m tools.ops.probe`: the container probe that dials a mesh server's gRPC health
like a peer would (plain, and under mTLS with the pod's own certificate). Real servers."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest

from mesh.rpc import add_port, build_server, set_serving
from tools.launcher.ports import free_port
from tools.ops import probe
from tools.ops.certs import ensure_dev_pki


@contextlib.contextmanager
def router_server(monkeypatch, environ: dict[str, str], serving: bool):
    """A mesh gRPC server (role router) in a thread, as mesh.rpc builds them."""
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    ready, stop = threading.Event(), threading.Event()

    async def run() -> None:
        server, health = build_server([], role="router")
        add_port(server, "127.0.0.1", port, "router")
        await server.start()
        await set_serving(health, [], serving)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await server.stop(None)

    thread = threading.Thread(target=lambda: asyncio.run(run()))
    thread.start()
    assert ready.wait(30)
    try:
        yield port
    finally:
        stop.set()
        thread.join(30)


@pytest.mark.parametrize("serving", [True, False])
def test_plain_probe_follows_the_health_status(monkeypatch, capsys, serving):
    monkeypatch.delenv("LLMAAS_TLS", raising=False)
    with router_server(monkeypatch, {}, serving) as port:
        rc = probe.main(["--port", str(port), "--role", "router"])
    assert rc == (0 if serving else 1)
    if not serving:
        assert "NOT_SERVING" in capsys.readouterr().err


def test_under_mtls_the_probe_presents_the_pods_certificate(monkeypatch, tmp_path, capsys):
    pki = ensure_dev_pki(tmp_path / "tls")
    env = {"LLMAAS_TLS": "1", "LLMAAS_TLS_DIR": str(pki), "LLMAAS_TLS_ROLE": "router"}
    with router_server(monkeypatch, env, True) as port:
        assert probe.main(["--port", str(port)]) == 0  # its own role, from LLMAAS_TLS_ROLE
        # Dialling it as another role fails the server-name check: not SERVING.
        assert probe.main(["--port", str(port), "--role", "filter"]) == 1
        monkeypatch.setenv("LLMAAS_TLS", "0")  # no certificate at all: the server refuses
        assert probe.main(["--port", str(port), "--role", "router"]) == 1
    assert "unreachable" in capsys.readouterr().err
