"""`start_mesh`: lock, ports, secrets, then every component as a child process."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from mesh.config import run_dir as default_run_dir
from tools.launcher import models as extra_models
from tools.launcher.children import (
    DEFAULT_MODEL,
    child_env,
    commands,
    env_for,
    role,
    router_env,
    served_model_id,
    tls_setup,
)
from tools.launcher.errors import MeshStartError
from tools.launcher.handle import MeshHandle, wait_serving
from tools.launcher.ports import (
    check_ports_free,
    free_port,
    plan_metrics_ports,
    plan_ports,
    port_plan,
    router_names,
)
from tools.launcher.process import spawn
from tools.launcher.rundir import lock_run_dir, private_dir


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
    routers: int = 1,
) -> MeshHandle:
    """Starts every component; free ports unless `default_ports` (what `make run` uses).

    Takes the run directory's lock first (MeshLockedError if another mesh holds it) and
    probes every port (PortInUseError) before it writes anything else there. `routers` > 1
    starts router-1..router-N (see `children.router_env`) behind one edge."""
    if routers < 1:
        raise MeshStartError(f"LLMAAS_ROUTERS={routers}: at least one router is needed")
    base = dict(os.environ if env is None else env)
    # LLMAAS_MODELS and the memory budget are checked before anything is touched
    extra = extra_models.parse_models(base.get("LLMAAS_MODELS", ""), served_model_id(model))
    shares = extra_models.memory_shares(base, workers + len(extra))  # each chat worker's
    run = Path(run_dir) if run_dir else default_run_dir(base)
    lock_fd = lock_run_dir(run)
    try:
        api_key = base.get("LLMAAS_DEV_KEY") or f"sk-llmaas-dev-{secrets.token_urlsafe(24)}"
        ports = plan_ports(workers, http_port, default_ports, base, routers)
        if embeddings:  # make run's embedding worker: the port after the chat workers
            ports.embed = ports.workers[-1] + 1 if default_ports and ports.workers else free_port()
        metrics = plan_metrics_ports(ports, default_ports, base)
        extra = extra_models.place(extra, ports, default_ports)
        metrics.update(extra_models.metrics_ports(extra, default_ports))
        check_ports_free(port_plan(ports, metrics, base) + extra_models.port_plan(extra))
        private_dir(run / "logs")
        ca = tls_setup(base, run)
    except BaseException:
        os.close(lock_fd)
        raise
    scheme = "https" if ca else "http"
    handle = MeshHandle(f"{scheme}://127.0.0.1:{ports.http}", api_key, ports, run, model, ca=ca)
    handle._lock_fd = lock_fd
    handle.metrics_ports = metrics
    handle.extra_models = extra
    root = Path(__file__).resolve().parents[2]  # the repository: children run `-m mesh...`
    try:
        shared = child_env(base, ports, model, api_key, run)
        handle.admin_key = shared["LLMAAS_ADMIN_KEY"]
        handle.mesh_token = shared["LLMAAS_MESH_TOKEN"]
        addrs = [shared["LLMAAS_WORKER_ADDRS"], *extra_models.worker_addrs(extra)]
        shared["LLMAAS_WORKER_ADDRS"] = ",".join(a for a in addrs if a)
        router_ports = dict(zip(router_names(routers), ports.routers, strict=True))
        for name, cmd in {**commands(ports, model), **extra_models.commands(extra)}.items():
            # LLMAAS_TLS_ROLE: the certificate each child presents (filter, worker, router, edge).
            env = {
                **env_for(name, shared, handle.metrics_ports),
                "LLMAAS_TLS_ROLE": role(name),
            }
            if name.startswith("worker-"):  # a chat worker: its share of the memory
                env.update(shares)
            if role(name) == "router":
                env.update(router_env(name, router_ports[name], shared, run))
                if "LLMAAS_ACCOUNTS_DB" in env and name != "router":
                    private_dir(Path(env["LLMAAS_ACCOUNTS_DB"]).parent)
            handle.launches[name] = (cmd, env, root)
            handle.processes[name] = spawn(run, name, cmd, env, root)
            if name == "router-1":
                # The others start once router-1 is up: it applies the schema migrations and
                # bootstraps the dev and admin keys in a shared database, once, first.
                wait_serving(handle, name, f"127.0.0.1:{router_ports[name]}", ready_timeout_s)
        if wait:
            handle.wait_ready(ready_timeout_s)
    except BaseException:
        handle.stop()
        raise
    return handle
