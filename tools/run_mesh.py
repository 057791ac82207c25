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

This module is the `make run` / `llmaas-mesh` command (banner, signals, supervision loop);
the launcher itself is the `tools.launcher` package, re-exported here for callers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from tools.launcher.children import DEFAULT_MODEL, EMBEDDING_MODEL, served_model_id
from tools.launcher.children import child_env as _child_env  # noqa: F401 - tests use it
from tools.launcher.errors import MeshLockedError, MeshStartError, PortInUseError
from tools.launcher.handle import STOP_TIMEOUT_S, MeshHandle
from tools.launcher.ports import DEFAULT_PORTS, Ports, check_ports_free, free_port
from tools.launcher.process import spawn as _spawn  # noqa: F401 - tests use it
from tools.launcher.rundir import admin_key_file, lock_run_dir, mesh_token_file
from tools.launcher.start import start_mesh
from tools.launcher.supervisor import Supervisor

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_PORTS",
    "EMBEDDING_MODEL",
    "STOP_TIMEOUT_S",
    "MeshHandle",
    "MeshLockedError",
    "MeshStartError",
    "PortInUseError",
    "Ports",
    "Supervisor",
    "admin_key_file",
    "check_ports_free",
    "free_port",
    "lock_run_dir",
    "main",
    "mesh_token_file",
    "served_model_id",
    "start_mesh",
]

# A worker's drain on SIGTERM under `make run` (LLMAAS_WORKER_DRAIN_TIMEOUT_S overrides the
# worker's 30 s): short enough that a stop finishes inside STOP_TIMEOUT_S.
MAKE_RUN_DRAIN_TIMEOUT_S = "5"


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

{_routers_line(handle)}{_models_lines(handle)}logs: {handle.run_dir / "logs"}   A child that dies is restarted (with backoff).
Ctrl-C stops everything (within 10 s; a second Ctrl-C at once).
ready"""


def _routers_line(handle: MeshHandle) -> str:
    """LLMAAS_ROUTERS=N: where the routers are, and what they share (or not)."""
    if len(handle.router_addresses) == 1:
        return ""
    env = handle.launches[next(iter(handle.launches))][1]
    store = (
        "one PostgreSQL store"
        if env.get("LLMAAS_DATABASE_URL")
        else "each its own SQLite store (set LLMAAS_DATABASE_URL to share one)"
    )
    limits = (
        "limits in Redis"
        if env.get("LLMAAS_REDIS_URL")
        else "limits per router (set LLMAAS_REDIS_URL to share them)"
    )
    return f"routers: {', '.join(handle.router_addresses)}; {store}; {limits}\n"


def _models_lines(handle: MeshHandle) -> str:
    """LLMAAS_MODELS: the other models served, each by its own worker."""
    return "".join(f"  also serving {m.name} ({m.path}, {m.child})\n" for m in handle.extra_models)


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
        "--routers",
        type=int,
        default=int(os.environ.get("LLMAAS_ROUTERS") or "1"),
        help="routers behind the edge (LLMAAS_ROUTERS; default 1)",
    )
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
    routers = "router" if args.routers == 1 else f"{args.routers} routers"
    print(
        f"starting filter, {args.workers} worker(s) for {args.model}{embed}, {routers} and "
        "edge ...",
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
            routers=args.routers,
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
