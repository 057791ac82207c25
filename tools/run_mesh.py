"""`make run`: the whole mesh on 127.0.0.1, one process per component.

Starts the security filter, LLMAAS_WORKERS workers (default 1) for smollm2:135m, one
embedding worker `embed-1` for all-minilm:22m (unless --no-embeddings / LLMAAS_EMBEDDINGS=0),
the router and the HTTP edge; writes `.run/<name>.pid` and `.run/logs/<name>.log`; waits for
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

from mesh import tls
from mesh.config import run_dir as default_run_dir
from mesh.metrics_http import metrics_port

DEFAULT_MODEL = "smollm2:135m"
DEFAULT_PORTS = {"http": 8000, "router": 50051, "filter": 50052, "worker": 50061}
EMBEDDING_MODEL = "all-minilm:22m"
STOP_ORDER = (
    "edge",
    "router",
    "worker",
    "embed",
    "filter",
)  # callers first, so nothing calls a dead peer


class MeshStartError(RuntimeError):
    pass


@dataclass(slots=True)
class Ports:
    http: int
    router: int
    filter: int
    workers: list[int]
    embed: int | None = None  # the embedding worker (embed-1), when started


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

    @property
    def router_address(self) -> str:
        return f"127.0.0.1:{self.ports.router}"

    @property
    def worker_addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports.workers]

    def restart(self, name: str, timeout_s: float = 15.0) -> subprocess.Popen:
        """Starts child `name` again with the same command and environment (same port);
        stops it first (SIGTERM, then SIGKILL) if it still runs."""
        old = self.processes.get(name)
        if old is not None and old.poll() is None:
            old.send_signal(signal.SIGTERM)
            try:
                old.wait(timeout_s)
            except subprocess.TimeoutExpired:
                old.kill()
                old.wait()
        cmd, env, cwd = self.launches[name]
        proc = _spawn(self.run_dir, name, cmd, env, cwd)
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

    def wait_ready(self, timeout_s: float = 300.0) -> None:
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            if dead := self.dead():
                name, rc = dead[0]
                raise MeshStartError(
                    f"{name} exited with code {rc} during start:\n{self.log_tail(name)}"
                )
            try:
                reply = httpx.get(
                    f"{self.url}/health", timeout=2, verify=str(self.ca) if self.ca else True
                )
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


def _ports(
    workers: int, http_port: int | None, default_ports: bool, env: Mapping[str, str]
) -> Ports:
    if default_ports:
        base = int(env.get("LLMAAS_WORKER_BASE_PORT", DEFAULT_PORTS["worker"]))
        return Ports(
            http=http_port or int(env.get("LLMAAS_HTTP_PORT", DEFAULT_PORTS["http"])),
            router=int(env.get("LLMAAS_ROUTER_PORT", DEFAULT_PORTS["router"])),
            filter=int(env.get("LLMAAS_FILTER_PORT", DEFAULT_PORTS["filter"])),
            workers=[base + i for i in range(workers)],
        )
    return Ports(
        http=http_port or free_port(),
        router=free_port(),
        filter=free_port(),
        workers=[free_port() for _ in range(workers)],
    )


def _commands(ports: Ports, model: str) -> dict[str, list[str]]:
    py = sys.executable
    cmds = {"filter": [py, "-m", "mesh.filter", "--port", str(ports.filter)]}
    for i, port in enumerate(ports.workers, start=1):
        cmds[f"worker-{i}"] = [
            py,
            "-m",
            "worker",
            "--model",
            model,
            "--port",
            str(port),
            "--worker-id",
            f"worker-{i}",
        ]
    if ports.embed is not None:
        cmds["embed-1"] = [
            py,
            "-m",
            "worker",
            "--model",
            EMBEDDING_MODEL,
            "--port",
            str(ports.embed),
            "--worker-id",
            "embed-1",
        ]
    cmds["router"] = [py, "-m", "mesh.router"]
    cmds["edge"] = [py, "-m", "mesh.edge"]
    return cmds


def _metrics_ports(ports: Ports, default_ports: bool, env: Mapping[str, str]) -> dict[str, int]:
    """Each gRPC child's metrics port: the documented defaults for `make run`, else free ports."""
    if env.get("LLMAAS_METRICS_PORT", "").strip().lower() in ("off", "none", "disabled", "-1"):
        return {}
    workers = {f"worker-{i}": p for i, p in enumerate(ports.workers, start=1)}
    if ports.embed is not None:
        workers["embed-1"] = ports.embed
    if not default_ports:
        return {name: free_port() for name in ("filter", *workers, "router")}
    out = {name: metrics_port(name, environ={}) for name in ("filter", "router")}
    out.update({name: metrics_port("worker", p, environ={}) for name, p in workers.items()})
    return {name: port for name, port in out.items() if port is not None}


def _env_for(
    name: str, child_env: Mapping[str, str], metrics_ports: Mapping[str, int]
) -> dict[str, str]:
    """One child's environment: its own metrics port (the edge: where to scrape the others) and,
    when OTEL_SERVICE_NAME is set, a service name per component so traces tell them apart."""
    env = dict(child_env)
    if name in metrics_ports:
        env["LLMAAS_METRICS_PORT"] = str(metrics_ports[name])
    if name == "edge":
        env["LLMAAS_METRICS_UPSTREAMS"] = ",".join(
            f"http://127.0.0.1:{p}/metrics" for p in metrics_ports.values()
        )
    if service := child_env.get("OTEL_SERVICE_NAME"):
        env["OTEL_SERVICE_NAME"] = f"{service}-{name.split('-')[0]}"
    return env


def _tls_setup(base: dict[str, str], run: Path) -> Path | None:
    """LLMAAS_TLS=1: the mesh PKI (a dev CA + role certificates in <run>/tls, made once,
    unless LLMAAS_TLS_DIR names the operator's); returns the CA file, None when plain."""
    if not tls.enabled(base):
        return None
    if base.get("LLMAAS_TLS_DIR"):
        directory = Path(base["LLMAAS_TLS_DIR"]).resolve()
    else:
        from tools.certs import ensure_dev_pki  # noqa: PLC0415 - only the TLS mode needs it

        directory = ensure_dev_pki(run / "tls")
    base["LLMAAS_TLS_DIR"] = str(directory)
    return directory / "ca.pem"


def _role(name: str) -> str:
    """A child's component role ("embed-1" is a worker: it serves the Worker API)."""
    group = name.split("-")[0]
    return "worker" if group == "embed" else group


def served_model_id(model: str) -> str:
    """The id a worker started with `--model <model>` announces (worker.loader's rule): a
    catalog alias as is, a GGUF file by its stem, a Hugging Face directory by its name."""
    path = Path(model)
    if path.is_dir():
        return path.name
    if path.is_file():
        return path.stem
    return model


def admin_key_file(run: Path) -> Path:
    return run / "secrets" / "admin-key"


def _admin_key(base: Mapping[str, str], run: Path) -> str:
    """LLMAAS_ADMIN_KEY, else the embedded default's own admin key, made once (0600)."""
    if base.get("LLMAAS_ADMIN_KEY"):
        return base["LLMAAS_ADMIN_KEY"]
    path = admin_key_file(run)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(f"sk-llmaas-admin-{secrets.token_urlsafe(24)}\n")
    return path.read_text().strip()


def _child_env(
    base: Mapping[str, str], ports: Ports, model: str, api_key: str, run: Path
) -> dict[str, str]:
    env = dict(base)
    env.update(
        {
            "LLMAAS_DEV_KEY": api_key,
            "LLMAAS_ADMIN_KEY": _admin_key(base, run),
            "LLMAAS_RUN_DIR": str(run),
            "LLMAAS_HTTP_PORT": str(ports.http),
            "LLMAAS_ROUTER_PORT": str(ports.router),
            "LLMAAS_ROUTER_ADDR": f"127.0.0.1:{ports.router}",
            # Workers announce themselves to the router's Registry (and withdraw on SIGTERM).
            "LLMAAS_ROUTER_ADDRESS": f"127.0.0.1:{ports.router}",
            "LLMAAS_FILTER_ADDR": f"127.0.0.1:{ports.filter}",
            "LLMAAS_WORKER_ADDRS": ",".join(
                [f"{served_model_id(model)}=127.0.0.1:{p}" for p in ports.workers]
                + (
                    [f"{EMBEDDING_MODEL}=127.0.0.1:{ports.embed}"]
                    if ports.embed is not None
                    else []
                )
            ),
            "PYTHONUNBUFFERED": "1",
        }
    )
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
    embeddings: bool = True,
    ready_timeout_s: float = 300.0,
) -> MeshHandle:
    """Starts every component; free ports unless `default_ports` (what `make run` uses)."""
    base = dict(os.environ if env is None else env)
    run = Path(run_dir) if run_dir else default_run_dir(base)
    (run / "logs").mkdir(parents=True, exist_ok=True)
    api_key = base.get("LLMAAS_DEV_KEY") or f"sk-llmaas-dev-{secrets.token_urlsafe(24)}"
    ports = _ports(workers, http_port, default_ports, base)
    if embeddings:  # make run's embedding worker: the port after the chat workers
        ports.embed = ports.workers[-1] + 1 if default_ports and ports.workers else free_port()
    ca = _tls_setup(base, run)
    scheme = "https" if ca else "http"
    handle = MeshHandle(f"{scheme}://127.0.0.1:{ports.http}", api_key, ports, run, model, ca=ca)
    handle.metrics_ports = _metrics_ports(ports, default_ports, base)
    child_env = _child_env(base, ports, model, api_key, run)
    handle.admin_key = child_env["LLMAAS_ADMIN_KEY"]
    root = Path(__file__).resolve().parent.parent
    try:
        for name, cmd in _commands(ports, model).items():
            # LLMAAS_TLS_ROLE: the certificate each child presents (filter, worker, router, edge).
            env = {
                **_env_for(name, child_env, handle.metrics_ports),
                "LLMAAS_TLS_ROLE": _role(name),
            }
            handle.launches[name] = (cmd, env, root)
            handle.processes[name] = _spawn(run, name, cmd, env, root)
        if wait:
            handle.wait_ready(ready_timeout_s)
    except BaseException:
        handle.stop()
        raise
    return handle


def _spawn(
    run: Path, name: str, cmd: list[str], env: Mapping[str, str], cwd: Path
) -> subprocess.Popen:
    """One child: log to .run/logs/<name>.log, PID in .run/<name>.pid."""
    with open(run / "logs" / f"{name}.log", "ab") as log:
        # Own session: Ctrl-C reaches only us, and we stop children in order.
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (run / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def _banner(handle: MeshHandle, key_created: bool) -> str:
    key_line = "created a dev API key" if key_created else "using LLMAAS_DEV_KEY"
    cacert = f"--cacert {handle.ca} " if handle.ca else ""
    return f"""
llmaas mesh is ready on {handle.url}  ({key_line})

  API key: {handle.api_key}
  Admin key (llmaas-admin reads it from {admin_key_file(handle.run_dir)} or LLMAAS_ADMIN_KEY):
    export LLMAAS_ADMIN_KEY={handle.admin_key}
{_tls_lines(handle)}
  curl {cacert}{handle.url}/v1/chat/completions \\
    -H "Authorization: Bearer {handle.api_key}" -H "Content-Type: application/json" \\
    -d '{{"model": "{handle.model}", "messages": [{{"role": "user", "content": "Hello!"}}], "max_tokens": 32}}'

logs: {handle.run_dir / "logs"}   Ctrl-C stops everything.
ready"""


def _tls_lines(handle: MeshHandle) -> str:
    if handle.ca is None:
        return ""
    return f"""
  TLS: HTTPS with TLS 1.3 only at the edge, mTLS (mesh CA + role check) between components.
  Trust the mesh CA {handle.ca}:
    curl --cacert {handle.ca} ...
    OpenAI(base_url="{handle.url}/v1", api_key=KEY, http_client=httpx.Client(verify="{handle.ca}"))
  Admin CLI (admin certificate): LLMAAS_TLS=1 LLMAAS_TLS_DIR={handle.ca.parent} llmaas-admin ...
"""


def _supervise(handle: MeshHandle) -> int:
    try:
        while not (dead := handle.dead()):
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping the mesh ...", flush=True)
        return 0
    name, rc = dead[0]
    print(
        f"\n{name} exited with code {rc}; stopping the mesh. Last log lines:\n{handle.log_tail(name)}",
        file=sys.stderr,
    )
    return 1


def _interrupt(signum: int, _frame: object) -> None:
    # SIGTERM behaves like Ctrl-C, so every path below stops the children.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.run_mesh", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workers", type=int, default=int(os.environ.get("LLMAAS_WORKERS", "1")))
    parser.add_argument("--model", default=os.environ.get("LLMAAS_MODEL", DEFAULT_MODEL))
    parser.add_argument(
        "--no-embeddings",
        dest="embeddings",
        action="store_false",
        default=os.environ.get("LLMAAS_EMBEDDINGS", "1") not in ("0", "off", "false"),
        help=f"don't start the {EMBEDDING_MODEL} embedding worker (LLMAAS_EMBEDDINGS=0)",
    )
    args = parser.parse_args(argv)
    key_created = not os.environ.get("LLMAAS_DEV_KEY")
    signal.signal(signal.SIGTERM, _interrupt)
    embed = f", 1 embedding worker for {EMBEDDING_MODEL}" if args.embeddings else ""
    print(
        f"starting filter, {args.workers} worker(s) for {args.model}{embed}, router and edge ...",
        flush=True,
    )
    handle = start_mesh(
        workers=args.workers,
        model=args.model,
        default_ports=True,
        wait=False,
        embeddings=args.embeddings,
    )
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
