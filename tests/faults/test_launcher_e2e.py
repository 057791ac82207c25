"""`make run` itself (`python -m tools.run_mesh` as a process, on free ports): a second launcher
on the same run directory or ports fails with a clear message while the first keeps serving
with its files untouched; a killed child is restarted; SIGTERM stops every process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tools.run_mesh import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-llmaas-dev-launcher-test-0123456789"


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def pids(run: Path) -> dict[str, int]:
    return {p.stem: int(p.read_text()) for p in run.glob("*.pid")}


def state(run: Path) -> dict[str, bytes]:
    """The first mesh's pid, lock and secret files (not the logs and database it writes)."""
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in run.rglob("*")
        if p.is_file() and "logs" not in p.parts and not p.name.startswith("accounts.sqlite3")
    }


def launcher_env(run: Path, ports: dict[str, int]) -> dict[str, str]:
    return {
        **os.environ,
        "LLMAAS_RUN_DIR": str(run),
        "LLMAAS_HTTP_PORT": str(ports["http"]),
        "LLMAAS_ROUTER_PORT": str(ports["router"]),
        "LLMAAS_FILTER_PORT": str(ports["filter"]),
        "LLMAAS_WORKER_BASE_PORT": str(ports["worker"]),
        "LLMAAS_METRICS_PORT": "off",  # the fixed metrics ports would clash with a make run
        "LLMAAS_WORKERS": "1",
        "LLMAAS_EMBEDDINGS": "0",
        "LLMAAS_DEV_KEY": KEY,
    }


def launch(env: dict[str, str], out: Path) -> subprocess.Popen:
    with out.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tools.run_mesh"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def health(url: str) -> int:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def chat_ok(url: str) -> bool:
    try:
        r = httpx.post(
            f"{url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {KEY}"},
            json={
                "model": "smollm2:135m",
                "max_tokens": 4,
                "messages": [{"role": "user", "content": "Hi"}],
            },
            timeout=60,
        )
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def test_make_run_refuses_a_second_mesh_restarts_children_and_stops_everything(tmp_path):
    run = tmp_path / "run"
    picked: set[int] = set()
    while len(picked) < 4:  # four distinct free ports
        picked.add(free_port())
    ports = dict(zip(("http", "router", "filter", "worker"), sorted(picked), strict=True))
    url = f"http://127.0.0.1:{ports['http']}"
    out = tmp_path / "launcher.out"
    first = launch(launcher_env(run, ports), out)
    seen: set[int] = set()
    try:
        assert wait_for(
            lambda: first.poll() is not None or "\nready" in out.read_text(errors="replace"), 300
        ), "not ready"
        assert first.poll() is None, out.read_text()
        assert health(url) == 200
        files = state(run)
        seen |= set(pids(run).values())

        # Same run directory: the lock; nothing of the first mesh's touched.
        second = subprocess.run(
            [sys.executable, "-m", "tools.run_mesh"],
            cwd=ROOT,
            env=launcher_env(run, ports),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 1
        assert f"another mesh is running from {run}, pid {first.pid}" in second.stderr
        # Another run directory, the same ports: the port probe, nothing started.
        other = tmp_path / "other"
        third = subprocess.run(
            [sys.executable, "-m", "tools.run_mesh"],
            cwd=ROOT,
            env=launcher_env(other, ports),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert third.returncode == 1
        assert f"127.0.0.1:{ports['http']} (edge HTTP)" in third.stderr
        assert "LLMAAS_HTTP_PORT" in third.stderr and "LLMAAS_ROUTER_PORT" in third.stderr
        assert not (other / "logs").exists() and not pids(other)
        assert state(run) == files
        assert health(url) == 200 and chat_ok(url)

        # A child killed: the launcher restarts it, the mesh serves on.
        filter_pid = pids(run)["filter"]
        os.kill(filter_pid, signal.SIGKILL)
        assert wait_for(lambda: pids(run).get("filter", filter_pid) != filter_pid, 120)
        seen |= set(pids(run).values())
        assert wait_for(lambda: chat_ok(url), 180)
        assert first.poll() is None
        assert f"filter (pid {filter_pid}) exited with code -9" in out.read_text()

        # SIGTERM: the launcher exits and takes every child with it.
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
        assert not [pid for pid in seen if running(pid)]
        assert "stopped in" in out.read_text()
        assert not pids(run)
    finally:
        if first.poll() is None:
            first.kill()
        for pid in seen:
            if running(pid):
                os.killpg(pid, signal.SIGKILL)
