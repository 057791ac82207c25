"""llmaas-admin with several routers: LLMAAS_ROUTER_ADDRS (or --addr) as a list, the first
router that accepts a connection is used; the old LLMAAS_ROUTER_ADDR still works."""

from __future__ import annotations

import argparse
from concurrent import futures

import grpc
import pytest

from tools.launcher.ports import free_port
from tools.ops.admin import cli


def _args(addr: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(addr=addr)


@pytest.fixture
def live() -> str:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_the_first_router_that_accepts_a_connection_is_used(monkeypatch, live):
    dead = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("LLMAAS_ROUTER_ADDRS", f"{dead},{live}")
    monkeypatch.setenv("LLMAAS_ROUTER_ADDR", "127.0.0.1:1")
    assert cli._address(_args()) == live
    assert cli._address(_args(f"{live},{dead}")) == live


def test_the_old_name_and_the_default_still_work(monkeypatch):
    monkeypatch.delenv("LLMAAS_ROUTER_ADDRS", raising=False)
    monkeypatch.setenv("LLMAAS_ROUTER_ADDR", "router:7")
    assert cli._address(_args()) == "router:7"
    monkeypatch.delenv("LLMAAS_ROUTER_ADDR")
    monkeypatch.setenv("LLMAAS_ROUTER_PORT", "4321")
    assert cli._address(_args()) == "127.0.0.1:4321"


def test_a_malformed_list_is_one_clear_error(capsys):
    assert cli.main(["--addr", "router", "tenant", "list"]) == 2
    assert "--addr: expected host:port, got 'router'" in capsys.readouterr().err
