"""Which ports a mesh listens on (defaults for `make run`, free ones for tests) and the
probe that refuses to start when one is taken."""

from __future__ import annotations

import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mesh.metrics_http import metrics_port
from tools.launcher.errors import PortInUseError

DEFAULT_PORTS = {"http": 8000, "router": 50051, "filter": 50052, "worker": 50061}
# LLMAAS_ROUTERS=N under `make run`: router-1 on LLMAAS_ROUTER_PORT (50051, metrics 9101),
# router-2.. on 50053, 50054, ... (metrics 9103, 9104, ...), between the filter and workers.
MORE_ROUTERS_BASE_PORT = 50053
MORE_ROUTERS_METRICS_BASE_PORT = 9103


@dataclass(slots=True)
class Ports:
    http: int
    router: int
    filter: int
    workers: list[int]
    embed: int | None = None  # the embedding worker (embed-1), when started
    more_routers: list[int] = field(default_factory=list)  # router-2..N (LLMAAS_ROUTERS=N)

    @property
    def routers(self) -> list[int]:
        return [self.router, *self.more_routers]


def router_names(count: int) -> list[str]:
    """One router is "router" (as always); several are router-1..router-N."""
    return ["router"] if count == 1 else [f"router-{i}" for i in range(1, count + 1)]


# Free ports for tests are picked below the kernel's ephemeral range, where outgoing
# connections take their source ports: a port picked there and bound only once its child has
# loaded a model could meanwhile become the source port of any client socket, the mesh's own
# included (a CI run lost a worker to "Address already in use" that way). Ports handed out
# are not handed out again by this process, so one plan never holds a port twice.
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PICK_SPAN = 12_000  # ports below the ephemeral range picked from
_handed_out: set[int] = set()


def _pick_range() -> tuple[int, int] | None:
    """The ports below the ephemeral range, or None when the range is unknown."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return (max(1024, low - PICK_SPAN), low - 1) if low > 2048 else None


def free_port() -> int:
    span = _pick_range()
    if span is not None:
        if len(_handed_out) > (span[1] - span[0]) // 2:
            _handed_out.clear()
        for _ in range(200):
            port = random.randint(*span)
            if port in _handed_out:
                continue
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _handed_out.add(port)
            return port
    with socket.socket() as s:  # no /proc (not Linux), or nothing free below it
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plan_ports(
    workers: int,
    http_port: int | None,
    default_ports: bool,
    env: Mapping[str, str],
    routers: int = 1,
) -> Ports:
    if default_ports:
        base = int(env.get("LLMAAS_WORKER_BASE_PORT", DEFAULT_PORTS["worker"]))
        return Ports(
            http=http_port or int(env.get("LLMAAS_HTTP_PORT", DEFAULT_PORTS["http"])),
            router=int(env.get("LLMAAS_ROUTER_PORT", DEFAULT_PORTS["router"])),
            filter=int(env.get("LLMAAS_FILTER_PORT", DEFAULT_PORTS["filter"])),
            workers=[base + i for i in range(workers)],
            more_routers=[MORE_ROUTERS_BASE_PORT + i for i in range(routers - 1)],
        )
    return Ports(
        http=http_port or free_port(),
        router=free_port(),
        filter=free_port(),
        workers=[free_port() for _ in range(workers)],
        more_routers=[free_port() for _ in range(routers - 1)],
    )


def plan_metrics_ports(ports: Ports, default_ports: bool, env: Mapping[str, str]) -> dict[str, int]:
    """Each gRPC child's metrics port: the documented defaults for `make run`, else free ports."""
    if env.get("LLMAAS_METRICS_PORT", "").strip().lower() in ("off", "none", "disabled", "-1"):
        return {}
    workers = {f"worker-{i}": p for i, p in enumerate(ports.workers, start=1)}
    if ports.embed is not None:
        workers["embed-1"] = ports.embed
    routers = router_names(len(ports.routers))
    if not default_ports:
        return {name: free_port() for name in ("filter", *workers, *routers)}
    out = {name: metrics_port(name, environ={}) for name in ("filter", "router")}
    if len(routers) > 1:
        out[routers[0]] = out.pop("router")
        out.update({n: MORE_ROUTERS_METRICS_BASE_PORT + i for i, n in enumerate(routers[1:])})
    out.update({name: metrics_port("worker", p, environ={}) for name, p in workers.items()})
    return {name: port for name, port in out.items() if port is not None}


def bind_host(name: str, env: Mapping[str, str]) -> str:
    """Where child `name` listens: the hosts the components read, loopback by default."""
    var = {"edge": "LLMAAS_HTTP_HOST", "router": "LLMAAS_ROUTER_HOST"}.get(name.split("-")[0])
    return (env.get(var, "") if var else "") or "127.0.0.1"


def port_plan(
    ports: Ports, metrics_ports: Mapping[str, int], env: Mapping[str, str]
) -> list[tuple[str, int, str, str]]:
    """(host, port, what, the env var that moves it) for every port the mesh listens on."""
    plan = [
        (bind_host("edge", env), ports.http, "edge HTTP", "LLMAAS_HTTP_PORT"),
        *(
            (bind_host("router", env), port, f"{name} gRPC", "LLMAAS_ROUTER_PORT")
            for name, port in zip(router_names(len(ports.routers)), ports.routers, strict=True)
        ),
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
