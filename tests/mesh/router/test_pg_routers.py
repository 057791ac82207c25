"""Two real router processes on one PostgreSQL database (no model needed: admin writes are
audited like requests): they start together (one schema migration), both append to ONE
audit chain, `kill -9` of one loses no record of a write it acknowledged, and
`llmaas-admin audit verify` through the survivor passes. Every wait is bounded (hang
guards, not timing assertions). Skips, saying why, when 127.0.0.1:5432 does not answer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pg_testkit import scratch_database, sql, url_of

from tools.ops.admin import cli

ROOT = Path(__file__).resolve().parents[3]
ADMIN_KEY = "sk-admin-pg-routers-0123456789"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(port: int, *argv: str) -> int:
    return cli.main(["--addr", f"127.0.0.1:{port}", "--key", ADMIN_KEY, *argv])


def _wait_serving(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120  # hang guard for a slow, busy machine
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"router exited {proc.returncode}: {log.read_text()[-2000:]}")
        if _admin(port, "tenant", "list", "--json") == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"router on {port} never served: {log.read_text()[-2000:]}")


def test_two_routers_one_chain_and_a_kill_9_loses_no_acknowledged_record(tmp_path, capsys):
    with scratch_database() as db:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LLMAAS_")}
        env.update(
            PYTHONPATH=str(ROOT),
            LLMAAS_RUN_DIR=str(tmp_path / "run"),  # one audit key file for both
            LLMAAS_DATABASE_URL=url_of(db),
            LLMAAS_ADMIN_KEY=ADMIN_KEY,
            LLMAAS_MESH_TOKEN="pg-routers-test-token",
            LLMAAS_METRICS_PORT="off",
            LLMAAS_FILTER_ADDR=f"127.0.0.1:{_free_port()}",
        )
        ports = [_free_port(), _free_port()]
        procs, logs = [], []
        for i, port in enumerate(ports):
            logs.append(tmp_path / f"router-{i}.log")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "mesh.router"],
                    cwd=ROOT,
                    env={**env, "LLMAAS_ROUTER_PORT": str(port)},
                    stdout=logs[-1].open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        try:
            for port, proc, log in zip(ports, procs, logs, strict=True):
                _wait_serving(port, proc, log)
            assert sql(db, "SELECT version FROM schema_version ORDER BY 1") == [(1,), (2,)]
            created: list[str] = []

            def create(i: int) -> None:
                port = ports[i % 2]
                if i == 30:  # mid-load: router 1 dies, writes in flight on it included
                    os.kill(procs[1].pid, signal.SIGKILL)
                if _admin(port, "tenant", "create", f"t{i}", "--json") == 0:
                    created.append(f"t{i}")  # acknowledged

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(create, range(60)))
            capsys.readouterr()
            assert sum(1 for name in created if int(name[1:]) % 2) >= 10  # both routers wrote
            audited = {
                t for (t,) in sql(db, "SELECT tenant FROM audit WHERE action = 'tenant.create'")
            }
            assert set(created) <= audited, sorted(set(created) - audited)
            assert _admin(ports[0], "audit", "verify", "--json") == 0, capsys.readouterr()
            seqs = [s for (s,) in sql(db, "SELECT seq FROM audit ORDER BY seq")]
            assert seqs == list(range(1, len(seqs) + 1))  # one chain, no fork, no gap
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
