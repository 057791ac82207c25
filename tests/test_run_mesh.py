"""The `make run` launcher (tools/run_mesh.py) without the model: real processes (small Python
children), a real MeshHandle, a test clock for the supervisor's backoff."""

from __future__ import annotations

import io
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tools import run_mesh
from tools.run_mesh import (
    MeshHandle,
    MeshLockedError,
    PortInUseError,
    Ports,
    Supervisor,
    free_port,
    lock_run_dir,
    start_mesh,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
# Ignores SIGTERM, starts a grandchild in its process group, writes its pid, then sleeps.
STUBBORN = [
    sys.executable,
    "-c",
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "open(sys.argv[1], 'w').write(str(g.pid))\n"
    "time.sleep(600)\n",
]


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphaned grandchild may wait a moment to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_for(predicate, timeout_s: float = 60.0) -> bool:
    """Bounded poll; the bound is an upper limit a slow machine still meets, never asserted as
    a duration."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def make_handle(run: Path, children: dict[str, list[str]]) -> MeshHandle:
    (run / "logs").mkdir(parents=True, exist_ok=True)
    handle = MeshHandle("http://127.0.0.1:1", "key", Ports(1, 2, 3, [4]), run, "m")
    for name, cmd in children.items():
        handle.launches[name] = (cmd, dict(os.environ), run)
        handle.processes[name] = run_mesh._spawn(run, name, cmd, os.environ, run)
    return handle


@pytest.fixture
def handle(tmp_path):
    h = make_handle(tmp_path, {"filter": SLEEPER, "worker-1": SLEEPER, "worker-2": SLEEPER})
    yield h
    h.kill_now()
    h.stop(timeout_s=0)


# -- the run directory's lock ----------------------------------------------------------


def test_a_second_lock_on_a_run_dir_is_refused_naming_the_holder(tmp_path):
    fd = lock_run_dir(tmp_path)
    with pytest.raises(MeshLockedError, match=rf"another mesh is running from .*pid {os.getpid()}"):
        lock_run_dir(tmp_path)
    os.close(fd)
    os.close(lock_run_dir(tmp_path))  # released with the file: the next launcher gets it


def test_start_mesh_on_a_locked_run_dir_fails_before_touching_anything(tmp_path):
    fd = lock_run_dir(tmp_path)
    (tmp_path / "edge.pid").write_text("4242\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        with pytest.raises(MeshLockedError):
            start_mesh({**os.environ}, run_dir=tmp_path, wait=False, embeddings=False)
    finally:
        os.close(fd)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no logs, secrets, pids
    assert (tmp_path / "edge.pid").read_text() == "4242\n"


def test_a_port_in_use_is_a_clear_error_and_nothing_starts(tmp_path):
    # The squatter binds like a gRPC server (SO_REUSEPORT): a probe that set it too would pass.
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    port = squatter.getsockname()[1]
    env = {
        **os.environ,
        "LLMAAS_HTTP_PORT": str(free_port()),
        "LLMAAS_ROUTER_PORT": str(port),
        "LLMAAS_FILTER_PORT": str(free_port()),
        "LLMAAS_WORKER_BASE_PORT": str(free_port()),
        "LLMAAS_METRICS_PORT": "off",
    }
    handle = None
    try:
        with pytest.raises(PortInUseError) as err:
            handle = start_mesh(
                env, run_dir=tmp_path, default_ports=True, wait=False, embeddings=False
            )
    finally:
        squatter.close()
        if handle is not None:
            handle.stop()
    assert f"127.0.0.1:{port} (router gRPC)" in str(err.value)
    assert "LLMAAS_ROUTER_PORT" in str(err.value)
    assert not (tmp_path / "logs").exists() and not (tmp_path / "secrets").exists()
    os.close(lock_run_dir(tmp_path))  # the failed start let go of the lock


# -- secrets ----------------------------------------------------------------------------


def test_the_mesh_token_is_made_once_private_and_given_to_every_child(tmp_path):
    base = {k: v for k, v in os.environ.items() if k != "LLMAAS_MESH_TOKEN"}
    ports = Ports(1, 2, 3, [4])
    env = run_mesh._child_env(base, ports, "m", "key", tmp_path)
    token_file = tmp_path / "secrets" / "mesh-token"
    assert env["LLMAAS_MESH_TOKEN"] == token_file.read_text().strip() != ""
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "secrets" / "admin-key").stat().st_mode) == 0o600
    again = run_mesh._child_env(base, ports, "m", "key", tmp_path)
    assert again["LLMAAS_MESH_TOKEN"] == env["LLMAAS_MESH_TOKEN"]
    given = run_mesh._child_env(
        {**base, "LLMAAS_MESH_TOKEN": "operator-token"}, ports, "m", "key", tmp_path
    )
    assert given["LLMAAS_MESH_TOKEN"] == "operator-token"


def test_child_logs_and_lock_are_private(tmp_path):
    handle = make_handle(tmp_path, {"filter": SLEEPER})
    try:
        assert stat.S_IMODE((tmp_path / "logs" / "filter.log").stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "filter.pid").stat().st_mode) == 0o600
    finally:
        handle.stop(timeout_s=5)
    os.close(lock_run_dir(tmp_path / "run"))
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "run" / "mesh.lock").stat().st_mode) == 0o600


# -- supervision ------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_dead_child_is_restarted_with_doubling_backoff_and_the_rest_untouched(handle):
    clock = Clock()
    out = io.StringIO()
    sup = Supervisor(handle, clock=clock, out=out, initial_backoff_s=1, max_backoff_s=4)
    sup.step()
    others = {n: handle.processes[n].pid for n in ("filter", "worker-2")}
    delays = []
    for _ in range(4):  # crashes right after each start: 1, 2, 4, then capped at 4
        old = handle.processes["worker-1"]
        kill9(old)
        sup.step()
        delays.append(sup.next_delay("worker-1"))
        assert handle.processes["worker-1"] is old  # not before its backoff
        clock.now += delays[-1]
        sup.step()
        assert handle.processes["worker-1"] is not old
        assert handle.processes["worker-1"].poll() is None
    assert delays == [1, 2, 4, 4]
    assert sup.restarts == {"worker-1": 4}
    assert {n: handle.processes[n].pid for n in others} == others
    assert "worker-1 (pid" in out.getvalue() and "exited with code -9" in out.getvalue()
    # Healthy for a while: the next crash is restarted after the initial backoff again.
    clock.now += sup.healthy_after_s
    sup.step()
    kill9(handle.processes["worker-1"])
    sup.step()
    assert sup.next_delay("worker-1") == 1


def test_a_held_child_stays_down_until_released(handle):
    clock = Clock()
    sup = Supervisor(handle, clock=clock, out=io.StringIO())
    sup.hold("filter")
    old = handle.processes["filter"]
    kill9(old)
    sup.step()
    clock.now += 100
    sup.step()
    assert handle.processes["filter"] is old
    sup.release("filter")
    sup.step()
    assert handle.processes["filter"] is not old and handle.processes["filter"].poll() is None


def test_the_supervise_loop_restarts_a_killed_child(handle):
    sup = Supervisor(handle, initial_backoff_s=0.01, out=io.StringIO())
    stop = threading.Event()
    loop = threading.Thread(target=sup.run, args=(stop, 0.01))
    loop.start()
    try:
        old = handle.processes["worker-2"]
        kill9(old)
        assert wait_for(lambda: handle.processes["worker-2"] is not old)
        assert handle.processes["worker-2"].poll() is None
        assert (handle.run_dir / "worker-2.pid").read_text().strip() == str(
            handle.processes["worker-2"].pid
        )
    finally:
        stop.set()
        loop.join(60)
    assert not loop.is_alive()


# -- stopping ---------------------------------------------------------------------------


def test_stop_kills_a_child_that_ignores_sigterm_and_its_whole_process_group(tmp_path):
    marker = tmp_path / "grandchild.txt"
    handle = make_handle(tmp_path, {"worker-1": [*STUBBORN, str(marker)], "filter": SLEEPER})
    assert wait_for(lambda: marker.exists() and marker.read_text().strip() != "")
    grandchild = int(marker.read_text())
    pids = [p.pid for p in handle.processes.values()]
    handle.stop(timeout_s=1)
    assert all(p.returncode is not None for p in handle.processes.values())
    assert handle.killed == ["worker-1"]  # the filter left on SIGTERM
    assert wait_for(lambda: not running(grandchild))  # killed with its group, then reaped
    assert not any(running(pid) for pid in pids)
    assert not list(tmp_path.glob("*.pid"))


def test_kill_now_cuts_a_stop_short(tmp_path):
    marker = tmp_path / "grandchild.txt"
    handle = make_handle(tmp_path, {"worker-1": [*STUBBORN, str(marker)]})
    assert wait_for(lambda: marker.exists() and marker.read_text().strip() != "")
    # A stop that would wait 10 minutes for a child that ignores SIGTERM ...
    stopper = threading.Thread(target=handle.stop, kwargs={"timeout_s": 600})
    stopper.start()
    assert wait_for(lambda: handle._hurry is not None and stopper.is_alive())
    handle.kill_now()  # ... ends at once on a second signal
    stopper.join(60)
    assert not stopper.is_alive()
    assert handle.processes["worker-1"].returncode is not None
    assert wait_for(lambda: not running(int(marker.read_text())))


def test_a_second_signal_kills_everything_the_first_only_asks_to_stop(handle):
    clock = Clock()
    signals = run_mesh._Signals(clock)
    signals.handle = handle
    signals(signal.SIGTERM, None)
    assert signals.stop.is_set()
    # The same SIGTERM relayed (make forwards its process group's signal): still one stop.
    signals(signal.SIGTERM, None)
    assert all(p.poll() is None for p in handle.processes.values())
    clock.now += 1
    signals(signal.SIGINT, None)
    assert all(p.wait(60) == -signal.SIGKILL for p in handle.processes.values())


def test_a_restart_stops_the_old_process_group_first(tmp_path):
    marker = tmp_path / "grandchild.txt"
    handle = make_handle(tmp_path, {"worker-1": [*STUBBORN, str(marker)]})
    try:
        assert wait_for(lambda: marker.exists() and marker.read_text().strip() != "")
        grandchild = int(marker.read_text())
        old = handle.processes["worker-1"]
        handle.launches["worker-1"] = (SLEEPER, dict(os.environ), tmp_path)
        handle.restart("worker-1", timeout_s=0.5)
        assert old.returncode is not None
        assert wait_for(lambda: not running(grandchild))
    finally:
        handle.stop(timeout_s=5)


def test_make_run_bounds_the_worker_drain_and_fails_clearly_when_it_cannot_start(
    monkeypatch, capsys
):
    seen: dict[str, str] = {}

    def refused(env, **_kwargs):
        seen.update(env)
        raise MeshLockedError("another mesh is running from /x, pid 1")

    monkeypatch.setattr(run_mesh, "start_mesh", refused)
    monkeypatch.setattr(run_mesh._Signals, "install", lambda self: None)
    monkeypatch.delenv("LLMAAS_WORKER_DRAIN_TIMEOUT_S", raising=False)
    assert run_mesh.main([]) == 1
    assert seen["LLMAAS_WORKER_DRAIN_TIMEOUT_S"] == run_mesh.MAKE_RUN_DRAIN_TIMEOUT_S
    assert "failed to start: another mesh is running from /x, pid 1" in capsys.readouterr().err
