"""`make run`: the whole mesh on 127.0.0.1, one process per component.

Starts the security filter, LLMAAS_WORKERS workers (default 1) for smollm2:135m, the
router and the HTTP edge; writes `.run/<name>.pid` and `.run/logs/<name>.log`; waits for
`GET /health` to answer 200 and prints "ready". Ctrl-C / SIGTERM stops everything; if a
child dies, it says which and stops the others.

Tests use `start_mesh(...)`, which picks free ports so a running `make run` is untouched.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mesh.config import run_dir as default_run_dir

DEFAULT_MODEL = "smollm2:135m"
DEFAULT_PORTS = {"http": 8000, "router": 50051, "filter": 50052, "worker": 50061}
STOP_ORDER = ("edge", "router", "worker", "filter")  # callers first, so nothing calls a dead peer


class MeshStartError(RuntimeError):
    pass


@dataclass(slots=True)
class Ports:
    http: int
    router: int
    filter: int
    workers: list[int]


@dataclass(slots=True)
class MeshHandle:
    url: str
    api_key: str
    ports: Ports
    run_dir: Path
    model: str
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def router_address(self) -> str:
        return f"127.0.0.1:{self.ports.router}"

    @property
    def worker_addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports.workers]

    def dead(self) -> list[tuple[str, int]]:
        return [(name, p.returncode) for name, p in self.processes.items() if p.poll() is not None]

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.run_dir / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if dead := self.dead():
                name, rc = dead[0]
                raise MeshStartError(f"{name} exited with code {rc} during start:\n{self.log_tail(name)}")
            try:
                reply = httpx.get(f"{self.url}/health", timeout=2)
                if reply.status_code == 200:
                    return
                last = reply.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise MeshStartError(f"mesh not ready after {timeout_s:.0f}s; last /health: {last}")

    def stop(self, timeout_s: float = 15.0) -> None:
        for group in STOP_ORDER:
            procs = [(n, p) for n, p in self.processes.items() if n.split("-")[0] == group]
            for _, proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for name, proc in procs:
                try:
                    proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                (self.run_dir / f"{name}.pid").unlink(missing_ok=True)

    def __enter__(self) -> MeshHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ports(workers: int, http_port: int | None, default_ports: bool, env: Mapping[str, str]) -> Ports:
    if default_ports:
        base = int(env.get("LLMAAS_WORKER_BASE_PORT", DEFAULT_PORTS["worker"]))
        return Ports(
            http=http_port or int(env.get("LLMAAS_HTTP_PORT", DEFAULT_PORTS["http"])),
            router=int(env.get("LLMAAS_ROUTER_PORT", DEFAULT_PORTS["router"])),
            filter=int(env.get("LLMAAS_FILTER_PORT", DEFAULT_PORTS["filter"])),
            workers=[base + i for i in range(workers)],
        )
    return Ports(http=http_port or free_port(), router=free_port(), filter=free_port(),
                 workers=[free_port() for _ in range(workers)])


def _commands(ports: Ports, model: str) -> dict[str, list[str]]:
    py = sys.executable
    cmds = {"filter": [py, "-m", "mesh.filter", "--port", str(ports.filter)]}
    for i, port in enumerate(ports.workers, start=1):
        cmds[f"worker-{i}"] = [py, "-m", "worker", "--model", model, "--port", str(port),
                               "--worker-id", f"worker-{i}"]
    cmds["router"] = [py, "-m", "mesh.router"]
    cmds["edge"] = [py, "-m", "mesh.edge"]
    return cmds


def _child_env(base: Mapping[str, str], ports: Ports, model: str, api_key: str, run: Path) -> dict[str, str]:
    env = dict(base)
    env.update({
        "LLMAAS_DEV_KEY": api_key,
        "LLMAAS_RUN_DIR": str(run),
        "LLMAAS_HTTP_PORT": str(ports.http),
        "LLMAAS_ROUTER_PORT": str(ports.router),
        "LLMAAS_ROUTER_ADDR": f"127.0.0.1:{ports.router}",
        "LLMAAS_FILTER_ADDR": f"127.0.0.1:{ports.filter}",
        "LLMAAS_WORKER_ADDRS": ",".join(f"{model}=127.0.0.1:{p}" for p in ports.workers),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def start_mesh(
    env: Mapping[str, str] | None = None,
    workers: int = 1,
    http_port: int | None = None,
    *,
    model: str = DEFAULT_MODEL,
    run_dir: Path | None = None,
    default_ports: bool = False,
    wait: bool = True,
    ready_timeout_s: float = 300.0,
) -> MeshHandle:
    """Starts every component; free ports unless `default_ports` (what `make run` uses)."""
    base = dict(os.environ if env is None else env)
    run = Path(run_dir) if run_dir else default_run_dir(base)
    (run / "logs").mkdir(parents=True, exist_ok=True)
    api_key = base.get("LLMAAS_DEV_KEY") or f"sk-llmaas-dev-{secrets.token_urlsafe(24)}"
    ports = _ports(workers, http_port, default_ports, base)
    handle = MeshHandle(f"http://127.0.0.1:{ports.http}", api_key, ports, run, model)
    child_env = _child_env(base, ports, model, api_key, run)
    root = Path(__file__).resolve().parent.parent
    try:
        for name, cmd in _commands(ports, model).items():
            with open(run / "logs" / f"{name}.log", "ab") as log:
                # Own session: Ctrl-C reaches only us, and we stop children in order.
                proc = subprocess.Popen(cmd, cwd=root, env=child_env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
            handle.processes[name] = proc
            (run / f"{name}.pid").write_text(f"{proc.pid}\n")
        if wait:
            handle.wait_ready(ready_timeout_s)
    except BaseException:
        handle.stop()
        raise
    return handle


def _banner(handle: MeshHandle, key_created: bool) -> str:
    key_line = "created a dev API key" if key_created else "using LLMAAS_DEV_KEY"
    return f"""
llmaas mesh is ready on {handle.url}  ({key_line})

  API key: {handle.api_key}

  curl {handle.url}/v1/chat/completions \\
    -H "Authorization: Bearer {handle.api_key}" -H "Content-Type: application/json" \\
    -d '{{"model": "{handle.model}", "messages": [{{"role": "user", "content": "Hello!"}}], "max_tokens": 32}}'

logs: {handle.run_dir / 'logs'}   Ctrl-C stops everything.
ready"""


def _supervise(handle: MeshHandle) -> int:
    try:
        while not (dead := handle.dead()):
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping the mesh ...", flush=True)
        return 0
    name, rc = dead[0]
    print(f"\n{name} exited with code {rc}; stopping the mesh. Last log lines:\n{handle.log_tail(name)}",
          file=sys.stderr)
    return 1


def _interrupt(signum: int, _frame: object) -> None:
    # SIGTERM behaves like Ctrl-C, so every path below stops the children.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run_mesh", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=int(os.environ.get("LLMAAS_WORKERS", "1")))
    parser.add_argument("--model", default=os.environ.get("LLMAAS_MODEL", DEFAULT_MODEL))
    args = parser.parse_args(argv)
    key_created = not os.environ.get("LLMAAS_DEV_KEY")
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"starting filter, {args.workers} worker(s) for {args.model}, router and edge ...", flush=True)
    handle = start_mesh(workers=args.workers, model=args.model, default_ports=True, wait=False)
    try:
        handle.wait_ready()
        print(_banner(handle, key_created), flush=True)
        return _supervise(handle)
    except MeshStartError as exc:
        print(f"failed to start: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        handle.stop()

if __name__ == "__main__":
    sys.exit(main())
