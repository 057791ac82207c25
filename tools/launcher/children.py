"""What each child is: its command line and environment (ports, keys, metrics, TLS role)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from mesh import tls
from tools.launcher.ports import Ports, router_names
from tools.launcher.rundir import admin_key, mesh_token

DEFAULT_MODEL = "smollm2:135m"
EMBEDDING_MODEL = "all-minilm:22m"


def commands(ports: Ports, model: str) -> dict[str, list[str]]:
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
    for name in router_names(len(ports.routers)):
        cmds[name] = [py, "-m", "mesh.router"]
    cmds["edge"] = [py, "-m", "mesh.edge"]
    return cmds


def env_for(
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


def tls_setup(base: dict[str, str], run: Path) -> Path | None:
    """LLMAAS_TLS=1: the mesh PKI (a dev CA + role certificates in <run>/tls, made once,
    unless LLMAAS_TLS_DIR names the operator's); returns the CA file, None when plain."""
    if not tls.enabled(base):
        return None
    if base.get("LLMAAS_TLS_DIR"):
        directory = Path(base["LLMAAS_TLS_DIR"]).resolve()
    else:
        from tools.ops.certs import ensure_dev_pki  # noqa: PLC0415 - only the TLS mode needs it

        directory = ensure_dev_pki(run / "tls")
    base["LLMAAS_TLS_DIR"] = str(directory)
    return directory / "ca.pem"


def role(name: str) -> str:
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


def child_env(
    base: Mapping[str, str], ports: Ports, model: str, api_key: str, run: Path
) -> dict[str, str]:
    env = dict(base)
    env.update(
        {
            "LLMAAS_DEV_KEY": api_key,
            "LLMAAS_ADMIN_KEY": admin_key(base, run),
            "LLMAAS_MESH_TOKEN": mesh_token(base, run),
            "LLMAAS_RUN_DIR": str(run),
            "LLMAAS_HTTP_PORT": str(ports.http),
            "LLMAAS_ROUTER_PORT": str(ports.router),
            "LLMAAS_ROUTER_ADDR": f"127.0.0.1:{ports.router}",
            # Workers announce themselves to the router's Registry (and withdraw on SIGTERM).
            "LLMAAS_ROUTER_ADDRESS": f"127.0.0.1:{ports.router}",
            # Every router (LLMAAS_ROUTERS=N): the edge spreads calls over them, the CLI uses
            # the first that answers, workers announce to each. Wins over the two above.
            "LLMAAS_ROUTER_ADDRS": ",".join(f"127.0.0.1:{p}" for p in ports.routers),
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


def router_env(name: str, port: int, shared: Mapping[str, str], run: Path) -> dict[str, str]:
    """What differs between routers (LLMAAS_ROUTERS=N): the port, and without a shared
    database (LLMAAS_DATABASE_URL) a store of its own under <run>/<name>/, since two routers
    must not append to one SQLite audit chain. Without LLMAAS_REDIS_URL limits are per router."""
    env = {"LLMAAS_ROUTER_PORT": str(port)}
    if name != "router" and not shared.get("LLMAAS_DATABASE_URL"):
        env["LLMAAS_ACCOUNTS_DB"] = str(run / name / "accounts.sqlite3")
        env["LLMAAS_CONTENT_DB"] = str(run / name / "content.sqlite3")
    return env
