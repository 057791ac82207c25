"""`make run`: the whole mesh on 127.0.0.1, one process per component.

Starts the security filter, LLMAAS_WORKERS workers (default 1) for smollm2:135m, one
embedding worker `embed-1` for all-minilm:22m (unless --no-embeddings / LLMAAS_EMBEDDINGS=0),
the router and the HTTP edge; writes `.run/<name>.pid` and `.run/logs/<name>.log`; waits for
`GET /health` to answer 200 and prints "ready".

While it runs, a child that dies (a worker, the filter, the router, the edge) is restarted
with exponential backoff (1 s doubling to 30 s, reset once it has run 60 s) and its last log
lines are printed; the rest keeps serving. Ctrl-C / SIGTERM stops everything within 10 s
(SIGTERM to each child's process group, SIGKILL at one overall deadline); a second signal
kills everything at once.

One mesh per run directory: `.run/mesh.lock` (flock) is taken before anything in `.run/` is
touched, and every port is probed (without SO_REUSEPORT) before anything starts, so a
second `make run` fails with a clear message and leaves the first one alone.

Tests use `start_mesh(...)`, which picks free ports so a running `make run` is untouched.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

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
# Stop stages (callers first); each gets its share of the one overall deadline before the
# next stage is signalled, and whatever still runs at the deadline is killed.
STOP_STAGES = (("edge",), ("router",), ("worker", "embed"), ("filter",))
STOP_TIMEOUT_S = 8.0  # + the SIGKILL sweep: everything gone within 10 s of SIGTERM
LOCK_NAME = "mesh.lock"
# A worker's drain on SIGTERM under `make run` (LLMAAS_WORKER_DRAIN_TIMEOUT_S overrides the
# worker's 30 s): short enough that a stop finishes inside STOP_TIMEOUT_S.
MAKE_RUN_DRAIN_TIMEOUT_S = "5"


class MeshStartError(RuntimeError):
    pass


class MeshLockedError(MeshStartError):
    """Another launcher holds the run directory's lock."""


class PortInUseError(MeshStartError):
    """A port the mesh needs is taken (by another mesh or anything else)."""


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
    mesh_token: str = ""  # LLMAAS_MESH_TOKEN, or the one made in .run/secrets/mesh-token
    _lock_fd: int | None = None  # the run directory's flock, held until stop()
    killed: list[str] = field(default_factory=list)  # children the last stop() had to SIGKILL
    _hurry: threading.Event = field(default_factory=threading.Event)

    @property
    def router_address(self) -> str:
        return f"127.0.0.1:{self.ports.router}"

    @property
    def worker_addresses(self) -> list[str]:
        return [f"127.0.0.1:{p}" for p in self.ports.workers]

    def restart(self, name: str, timeout_s: float = STOP_TIMEOUT_S) -> subprocess.Popen:
        """Starts child `name` again with the same command and environment (same port);
        stops it first (SIGTERM to its process group, SIGKILL after timeout_s) if it runs."""
        old = self.processes.get(name)
        if old is not None:
            _stop_group(old, timeout_s)
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
                if reply.status_code == 200:
                    return
                last = reply.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.5)
        raise MeshStartError(f"mesh not ready after {timeout_s:.0f}s; last /health: {last}")

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
                    _signal_group(proc, signal.SIGTERM)
            _wait_all(stage, started + timeout_s * i / len(stages), self._hurry)
        _wait_all(list(alive.values()), deadline, self._hurry)
        self.killed = [name for name, proc in alive.items() if proc.poll() is None]
        for proc in alive.values():
            _signal_group(proc, signal.SIGKILL)  # overstayed, or a grandchild left behind
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
                _signal_group(proc, signal.SIGKILL)

    def release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the file releases the flock
            self._lock_fd = None

    def __enter__(self) -> MeshHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    """`sig` to the child's whole process group (its own session: pgid == pid). A reaped
    child's group is signalled too, for grandchildren it left behind; a group that no longer
    exists is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _wait_all(procs: list[subprocess.Popen], until: float, hurry: threading.Event) -> None:
    while any(p.poll() is None for p in procs) and time.monotonic() < until:
        if hurry.is_set():
            return
        time.sleep(0.05)


def _stop_group(proc: subprocess.Popen, timeout_s: float) -> None:
    """SIGTERM to the child's process group, SIGKILL after timeout_s; reaped on return."""
    if proc.poll() is not None:
        return  # reaped already: its pid may belong to someone else by now
    _signal_group(proc, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout_s)
    _signal_group(proc, signal.SIGKILL)
    proc.wait()


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


def mesh_token_file(run: Path) -> Path:
    return run / "secrets" / "mesh-token"


def _private_dir(path: Path) -> Path:
    """A directory only this user can read (0700), made if missing."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def _secret(path: Path, make: Callable[[], str]) -> str:
    """The secret in `path`, written once (0600, created exclusively: never readable by
    others, not even for an instant); its directory 0700."""
    _private_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(make() + "\n")
    path.chmod(0o600)
    return path.read_text().strip()


def _admin_key(base: Mapping[str, str], run: Path) -> str:
    """LLMAAS_ADMIN_KEY, else the embedded default's own admin key, made once (0600)."""
    if base.get("LLMAAS_ADMIN_KEY"):
        return base["LLMAAS_ADMIN_KEY"]
    return _secret(admin_key_file(run), lambda: f"sk-llmaas-admin-{secrets.token_urlsafe(24)}")


def _mesh_token(base: Mapping[str, str], run: Path) -> str:
    """LLMAAS_MESH_TOKEN (the control plane's shared token in plain mode), else one made
    once in .run/secrets/mesh-token (0600)."""
    if base.get("LLMAAS_MESH_TOKEN"):
        return base["LLMAAS_MESH_TOKEN"]
    return _secret(mesh_token_file(run), lambda: secrets.token_urlsafe(32))


def _child_env(
    base: Mapping[str, str], ports: Ports, model: str, api_key: str, run: Path
) -> dict[str, str]:
    env = dict(base)
    env.update(
        {
            "LLMAAS_DEV_KEY": api_key,
            "LLMAAS_ADMIN_KEY": _admin_key(base, run),
            "LLMAAS_MESH_TOKEN": _mesh_token(base, run),
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


def lock_run_dir(run: Path) -> int:
    """Takes `<run>/mesh.lock` (flock, held until the returned fd is closed) and writes this
    process's pid into it; MeshLockedError naming the holder's pid when another mesh has it.
    Only the run directory and the lock file are touched before the lock is ours."""
    _private_dir(run)
    fd = os.open(run / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        raise MeshLockedError(
            f"another mesh is running from {run}, pid {holder}; stop it first, or set "
            "LLMAAS_RUN_DIR (and the ports) for a second one"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _bind_host(name: str, env: Mapping[str, str]) -> str:
    """Where child `name` listens: the hosts the components read, loopback by default."""
    var = {"edge": "LLMAAS_HTTP_HOST", "router": "LLMAAS_ROUTER_HOST"}.get(name.split("-")[0])
    return (env.get(var, "") if var else "") or "127.0.0.1"


def _port_plan(
    ports: Ports, metrics_ports: Mapping[str, int], env: Mapping[str, str]
) -> list[tuple[str, int, str, str]]:
    """(host, port, what, the env var that moves it) for every port the mesh listens on."""
    plan = [
        (_bind_host("edge", env), ports.http, "edge HTTP", "LLMAAS_HTTP_PORT"),
        (_bind_host("router", env), ports.router, "router gRPC", "LLMAAS_ROUTER_PORT"),
        ("127.0.0.1", ports.filter, "filter gRPC", "LLMAAS_FILTER_PORT"),
    ]
    for i, port in enumerate(ports.workers, start=1):
        plan.append(("127.0.0.1", port, f"worker-{i} gRPC", "LLMAAS_WORKER_BASE_PORT"))
    if ports.embed is not None:
        plan.append(("127.0.0.1", ports.embed, "embed-1 gRPC", "LLMAAS_WORKER_BASE_PORT"))
    metrics_host = env.get("LLMAAS_METRICS_HOST") or "127.0.0.1"
    for name, port in metrics_ports.items():
        plan.append((metrics_host, port, f"{name} metrics", "LLMAAS_METRICS_PORT=off"))
    return plan


def check_ports_free(plan: list[tuple[str, int, str, str]]) -> None:
    """PortInUseError naming every taken port. Each is bound WITHOUT SO_REUSEPORT (gRPC
    servers set it, and a second one would silently share the port); SO_REUSEADDR only
    lets a port whose old connections linger in TIME_WAIT pass, never a listening one."""
    taken: list[str] = []
    for host, port, what, var in plan:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host.strip("[]"), port))
            except OSError as exc:
                taken.append(f"  {host}:{port} ({what}): {exc.strerror}; change {var}")
    if taken:
        raise PortInUseError(
            "port(s) already in use, nothing started (is another mesh running?):\n"
            + "\n".join(taken)
        )


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
    """Starts every component; free ports unless `default_ports` (what `make run` uses).

    Takes the run directory's lock first (MeshLockedError if another mesh holds it) and
    probes every port (PortInUseError) before it writes anything else there."""
    base = dict(os.environ if env is None else env)
    run = Path(run_dir) if run_dir else default_run_dir(base)
    lock_fd = lock_run_dir(run)
    try:
        api_key = base.get("LLMAAS_DEV_KEY") or f"sk-llmaas-dev-{secrets.token_urlsafe(24)}"
        ports = _ports(workers, http_port, default_ports, base)
        if embeddings:  # make run's embedding worker: the port after the chat workers
            ports.embed = ports.workers[-1] + 1 if default_ports and ports.workers else free_port()
        metrics = _metrics_ports(ports, default_ports, base)
        check_ports_free(_port_plan(ports, metrics, base))
        _private_dir(run / "logs")
        ca = _tls_setup(base, run)
    except BaseException:
        os.close(lock_fd)
        raise
    scheme = "https" if ca else "http"
    handle = MeshHandle(f"{scheme}://127.0.0.1:{ports.http}", api_key, ports, run, model, ca=ca)
    handle._lock_fd = lock_fd
    handle.metrics_ports = metrics
    root = Path(__file__).resolve().parent.parent
    try:
        child_env = _child_env(base, ports, model, api_key, run)
        handle.admin_key = child_env["LLMAAS_ADMIN_KEY"]
        handle.mesh_token = child_env["LLMAAS_MESH_TOKEN"]
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
    """One child: log to .run/logs/<name>.log (0600), PID in .run/<name>.pid."""
    fd = os.open(run / "logs" / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        # Own session: Ctrl-C reaches only us, we stop children in order, and a child's
        # whole process group can be signalled (grandchildren included).
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _write_private(run / f"{name}.pid", f"{proc.pid}\n")
    return proc


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


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

logs: {handle.run_dir / "logs"}   A child that dies is restarted (with backoff).
Ctrl-C stops everything (within 10 s; a second Ctrl-C at once).
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


@dataclass(slots=True)
class Supervisor:
    """Keeps the mesh up: a child that dies is restarted (same command, port, environment)
    after a backoff that doubles per quick crash (initial_backoff_s .. max_backoff_s) and
    resets once the child has run healthy_after_s; each death is reported with its last log
    lines. `step()` is one pass (tests drive it, with their own clock); `run()` loops."""

    handle: MeshHandle
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    healthy_after_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    out: TextIO = field(default_factory=lambda: sys.stderr)
    restarts: dict[str, int] = field(default_factory=dict)  # per child, for reports and tests
    _held: set[str] = field(default_factory=set)
    _started: dict[str, float] = field(default_factory=dict)
    _backoff: dict[str, float] = field(default_factory=dict)
    _due: dict[str, float] = field(default_factory=dict)  # dead children: when to restart
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, name: str) -> None:
        """Leaves child `name` down if it dies (until `release`): an operator's or a test's
        planned outage."""
        with self._lock:
            self._held.add(name)

    def release(self, name: str) -> None:
        with self._lock:
            self._held.discard(name)

    def next_delay(self, name: str) -> float | None:
        """Seconds until a dead child's restart; None when it is not waiting for one."""
        due = self._due.get(name)
        return None if due is None else max(0.0, due - self.clock())

    def step(self) -> None:
        with self._lock:
            now = self.clock()
            for name, proc in list(self.handle.processes.items()):
                started = self._started.setdefault(name, now)
                if name in self._due:
                    if now >= self._due[name] and name not in self._held:
                        self._restart(name, now)
                    continue
                rc = proc.poll()
                if rc is None:
                    if now - started >= self.healthy_after_s:
                        self._backoff.pop(name, None)  # healthy again: next crash, 1 s
                    continue
                self._died(name, proc.pid, rc, now - started, now)

    def _died(self, name: str, pid: int, rc: int, ran_s: float, now: float) -> None:
        if ran_s >= self.healthy_after_s:
            self._backoff.pop(name, None)
        delay = self._backoff.get(name, self.initial_backoff_s)
        self._backoff[name] = min(delay * 2, self.max_backoff_s)
        self._due[name] = now + delay
        held = " (held: not restarted until released)" if name in self._held else ""
        print(
            f"\n{name} (pid {pid}) exited with code {rc} after {ran_s:.1f}s; restarting it "
            f"in {delay:.0f}s{held}, the rest keeps serving. Last log lines:\n"
            f"{self.handle.log_tail(name)}",
            file=self.out,
            flush=True,
        )

    def _restart(self, name: str, now: float) -> None:
        try:
            proc = self.handle.restart(name)
        except OSError as exc:  # e.g. out of processes: try again after the next backoff
            delay = self._backoff.get(name, self.initial_backoff_s)
            self._backoff[name] = min(delay * 2, self.max_backoff_s)
            self._due[name] = now + delay
            print(f"{name}: restart failed ({exc}); next try in {delay:.0f}s", file=self.out)
            return
        del self._due[name]
        self._started[name] = now
        self.restarts[name] = self.restarts.get(name, 0) + 1
        print(f"{name} restarted (pid {proc.pid})", file=self.out, flush=True)

    def run(self, stop: threading.Event, interval_s: float = 0.5) -> None:
        """Supervises until `stop` is set."""
        while not stop.wait(interval_s):
            self.step()


class _Signals:
    """SIGTERM / SIGINT: the first asks for a stop (the launcher's loops watch `stop`), a
    second kills every child at once. A signal within SAME_SIGNAL_S of the first is the same
    request delivered twice (`kill -TERM -<pgid>` of `make run`: make relays it too)."""

    SAME_SIGNAL_S = 0.5

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.stop = threading.Event()
        self.handle: MeshHandle | None = None
        self._clock = clock
        self._first = 0.0

    def __call__(self, signum: int, _frame: object) -> None:
        if not self.stop.is_set():
            self._first = self._clock()
            self.stop.set()
            return
        if self._clock() - self._first < self.SAME_SIGNAL_S:
            return
        with contextlib.suppress(RuntimeError):  # print() re-entered from a signal handler
            print("\nsecond signal: killing every process now", file=sys.stderr, flush=True)
        if self.handle is not None:
            self.handle.kill_now()

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self)


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
    signals = _Signals()
    signals.install()
    embed = f", 1 embedding worker for {EMBEDDING_MODEL}" if args.embeddings else ""
    print(
        f"starting filter, {args.workers} worker(s) for {args.model}{embed}, router and edge ...",
        flush=True,
    )
    env = dict(os.environ)
    env.setdefault("LLMAAS_WORKER_DRAIN_TIMEOUT_S", MAKE_RUN_DRAIN_TIMEOUT_S)
    try:  # the lock and the port probes: a clear error, nothing started, nothing touched
        handle = start_mesh(
            env,
            workers=args.workers,
            model=args.model,
            default_ports=True,
            wait=False,
            embeddings=args.embeddings,
        )
    except MeshStartError as exc:
        print(f"failed to start: {exc}", file=sys.stderr)
        return 1
    signals.handle = handle
    try:
        handle.wait_ready(cancel=signals.stop)
        print(_banner(handle, key_created), flush=True)
        Supervisor(handle).run(signals.stop)
        return 0
    except MeshStartError as exc:
        if signals.stop.is_set():
            return 0
        print(f"failed to start: {exc}", file=sys.stderr)
        return 1
    finally:
        print("\nstopping the mesh ...", flush=True)
        signals.stop.set()  # from here on, a signal means "kill now"
        started = time.monotonic()
        handle.stop()
        killed = f" (SIGKILLed: {', '.join(handle.killed)})" if handle.killed else ""
        print(f"stopped in {time.monotonic() - started:.1f}s{killed}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
