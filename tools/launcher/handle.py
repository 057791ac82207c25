"""A running mesh: its children, ports and keys; readiness, restart and the staged stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tools.launcher.errors import MeshStartError
from tools.launcher.ports import Ports
from tools.launcher.process import signal_group, spawn, stop_group, wait_all
from tools.ops.probe import health_status

STOP_ORDER = (
    "edge",
    "router",
    "worker",
    "embed",
    "filter",
)  # callers first, so nothing calls a dead peer
# Stop stages (callers first); each gets its share of the one overall deadline before the
# next stage is signalled, and whatever still runs at the deadline is killed.
STOP_STAGES = (("edge",), ("router",), ("worker", "embed"), ("filter",))
STOP_TIMEOUT_S = 8.0  # + the SIGKILL sweep: everything gone within 10 s of SIGTERM


@dataclass(slots=True)
class MeshHandle:
    url: str
    api_key: str
    ports: Ports
    run_dir: Path
    model: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # Prometheus port of each gRPC child (filter, worker-N, router); the edge serves /metrics.
    metrics_ports: dict[str, int] = field(default_factory=dict)
    # LLMAAS_TLS=1: the CA clients trust the edge's HTTPS with (and the mesh's mTLS uses).
    ca: Path | None = None
    # How each child was started (command, environment, cwd), so `restart` can do it again.
    launches: dict[str, tuple[list[str], dict[str, str], Path]] = field(default_factory=dict)
    admin_key: str = ""  # LLMAAS_ADMIN_KEY, or the one made in .run/secrets/admin-key
    mesh_token: str = ""  # LLMAAS_MESH_TOKEN, or the one made in .run/secrets/mesh-token
    # LLMAAS_MODELS: the models served beside the default one (tools/launcher/models.py)
    extra_models: list = field(default_factory=list)
    _lock_fd: int | None = None  # the run directory's flock, held until stop()
    killed: list[str] = field(default_factory=list)  # children the last stop() had to SIGKILL
    _hurry: threading.Event = field(default_factory=threading.Event)

    @property
    def router_address(self) -> str:
        return f"127.0.0.1:{self.ports.router}"

    @property
    def router_addresses(self) -> list[str]:
        """Every router (LLMAAS_ROUTERS=N); router_address is the first."""
        return [f"127.0.0.1:{p}" for p in self.ports.routers]

    @property
    def worker_addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports.workers]

    def restart(self, name: str, timeout_s: float = STOP_TIMEOUT_S) -> subprocess.Popen:
        """Starts child `name` again with the same command and environment (same port);
        stops it first (SIGTERM to its process group, SIGKILL after timeout_s) if it runs."""
        old = self.processes.get(name)
        if old is not None:
            stop_group(old, timeout_s)
        cmd, env, cwd = self.launches[name]
        proc = spawn(self.run_dir, name, cmd, env, cwd)
        self.processes[name] = proc
        return proc

    def dead(self) -> list[tuple[str, int]]:
        return [(name, p.returncode) for name, p in self.processes.items() if p.poll() is not None]

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.run_dir / "logs" / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )

    def wait_ready(self, timeout_s: float = 300.0, cancel: threading.Event | None = None) -> None:
        """Until `GET /health` answers 200; MeshStartError when a child dies, on timeout, or
        when `cancel` is set (a stop was asked for during the start)."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                raise MeshStartError("stopped during start")
            if dead := self.dead():
                name, rc = dead[0]
                raise MeshStartError(
                    f"{name} exited with code {rc} during start:\n{self.log_tail(name)}"
                )
            try:
                reply = httpx.get(
                    f"{self.url}/health", timeout=2, verify=str(self.ca) if self.ca else True
                )
                if reply.status_code == 200 and self._all_routers_ready(reply.json()):
                    return
                last = reply.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise MeshStartError(f"mesh not ready after {timeout_s:.0f}s; last /health: {last}")

    @staticmethod
    def _all_routers_ready(health: dict) -> bool:
        """Several routers: /health lists each; ready once every one is (not just one)."""
        return all(status == "SERVING" for status in health.get("routers", {}).values())

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stops every child within one deadline: SIGTERM stage by stage (callers first, each
        stage waited for at most its share of `timeout_s`), then SIGKILL to the process group
        of whatever still runs, and a final SIGKILL sweep of every child's group (so no
        grandchild outlives the mesh). `kill_now()` (a second Ctrl-C) cuts it short."""
        started = time.monotonic()
        deadline = started + timeout_s
        # Only children alive now are signalled: a group reaped long ago may have lost its id.
        alive = {n: p for n, p in self.processes.items() if p.poll() is None}
        stages = [
            [p for n, p in alive.items() if n.split("-")[0] in stage] for stage in STOP_STAGES
        ]
        stages.append([p for n, p in alive.items() if n.split("-")[0] not in STOP_ORDER])
        stages = [stage for stage in stages if stage]
        for i, stage in enumerate(stages, start=1):
            for proc in stage:
                if proc.poll() is None and not self._hurry.is_set():
                    signal_group(proc, signal.SIGTERM)
            wait_all(stage, started + timeout_s * i / len(stages), self._hurry)
        wait_all(list(alive.values()), deadline, self._hurry)
        self.killed = [name for name, proc in alive.items() if proc.poll() is None]
        for proc in alive.values():
            signal_group(proc, signal.SIGKILL)  # overstayed, or a grandchild left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        for name in self.processes:
            (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        self.release_lock()

    def kill_now(self) -> None:
        """SIGKILL to every child's process group at once (a second Ctrl-C / SIGTERM);
        a `stop()` in progress then only reaps."""
        self._hurry.set()
        for proc in list(self.processes.values()):
            if proc.returncode is None:  # not reaped: its pid (and group id) still ours
                signal_group(proc, signal.SIGKILL)

    def release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the file releases the flock
            self._lock_fd = None

    def __enter__(self) -> MeshHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_serving(handle: MeshHandle, name: str, address: str, timeout_s: float) -> None:
    """Until child `name`'s gRPC health answers SERVING at `address` (as the edge would ask,
    with the edge's certificate under LLMAAS_TLS=1); MeshStartError if it dies or times out."""
    environ = {**handle.launches[name][1], "LLMAAS_TLS_ROLE": "edge"}
    deadline = time.monotonic() + timeout_s
    status = ""
    while time.monotonic() < deadline:
        if (rc := handle.processes[name].poll()) is not None:
            raise MeshStartError(
                f"{name} exited with code {rc} during start:\n{handle.log_tail(name)}"
            )
        if (status := health_status(address, name.split("-")[0], environ)) == "SERVING":
            return
        time.sleep(0.2)
    raise MeshStartError(f"{name} not serving at {address} after {timeout_s:.0f}s: {status}")
