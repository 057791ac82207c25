"""EdgeConfig: the HTTP edge's settings, from LLMAAS_* env (file section `[edge]`).

Limits on what a client may send (env, default):
- LLMAAS_MAX_BODY_BYTES (8 MiB): request bodies above it are refused with 413 (shared with
  the gRPC message limits, `mesh.config.max_body_bytes`).
- LLMAAS_BODY_TIMEOUT_S (30): the whole body must arrive within it, else 408.
- LLMAAS_MAX_HEADER_BYTES (16384): request line plus headers; more is 431.
- LLMAAS_HEADER_TIMEOUT_S (10): request line and headers must arrive within it, else 408.
- LLMAAS_HTTP_LIMIT_CONCURRENCY (1024): open connections or requests in progress; past it
  the answer is 503 `server_overloaded` at once instead of queueing without bound.
- LLMAAS_HTTP_KEEP_ALIVE_S (5): an idle keep-alive connection is closed after it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mesh.config import (
    DEFAULT_MAX_BODY_BYTES,
    ConfigError,
    env,
    load_file,
    max_body_bytes,
    parse_addresses,
    router_addresses,
)
from mesh.edge.http_protocol import DEFAULT_HEADER_TIMEOUT_S, DEFAULT_MAX_HEADER_BYTES
from mesh.edge.limits import DEFAULT_BODY_TIMEOUT_S

DEFAULT_LIMIT_CONCURRENCY = 1024
DEFAULT_KEEP_ALIVE_S = 5.0


@dataclass(slots=True)
class EdgeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    router_address: str = "127.0.0.1:50051"
    # LLMAAS_ROUTER_ADDRS: every router the edge spreads calls over (empty: router_address).
    router_addresses: tuple[str, ...] = ()
    # Deadline sent to the router with every call; the router caps it with its own limit.
    request_timeout_s: float = 600.0
    health_timeout_s: float = 2.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY
    keep_alive_s: float = DEFAULT_KEEP_ALIVE_S

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"LLMAAS_HTTP_PORT={self.port} is out of range")
        for key, value in (
            ("LLMAAS_BODY_TIMEOUT_S", self.body_timeout_s),
            ("LLMAAS_HEADER_TIMEOUT_S", self.header_timeout_s),
            ("LLMAAS_HTTP_LIMIT_CONCURRENCY", self.limit_concurrency),
            ("LLMAAS_HTTP_KEEP_ALIVE_S", self.keep_alive_s),
        ):
            if not value > 0:
                raise ConfigError(f"{key}={value} must be positive")
        if not self.routers:
            raise ConfigError("LLMAAS_ROUTER_ADDRS names no router")
        if self.max_header_bytes < 1024:
            raise ConfigError(f"LLMAAS_MAX_HEADER_BYTES={self.max_header_bytes} is below 1024")

    @property
    def routers(self) -> tuple[str, ...]:
        return self.router_addresses or parse_addresses(self.router_address, "router_address")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EdgeConfig:
        environ = dict(os.environ) if environ is None else environ
        edge = load_file(environ).get("edge", {})
        router_port = env("LLMAAS_ROUTER_PORT", int, 50051, environ)
        return cls(
            host=env("LLMAAS_HTTP_HOST", str, str(edge.get("host", "127.0.0.1")), environ),
            port=env("LLMAAS_HTTP_PORT", int, int(edge.get("port", 8000)), environ),
            router_addresses=router_addresses(
                environ,
                ("LLMAAS_ROUTER_ADDR",),
                _file_routers(edge) or f"127.0.0.1:{router_port}",
            ),
            request_timeout_s=env(
                "LLMAAS_REQUEST_TIMEOUT_S",
                float,
                float(edge.get("request_timeout_s", 600.0)),
                environ,
            ),
            max_body_bytes=max_body_bytes(environ),
            body_timeout_s=env("LLMAAS_BODY_TIMEOUT_S", float, DEFAULT_BODY_TIMEOUT_S, environ),
            max_header_bytes=env("LLMAAS_MAX_HEADER_BYTES", int, DEFAULT_MAX_HEADER_BYTES, environ),
            header_timeout_s=env(
                "LLMAAS_HEADER_TIMEOUT_S", float, DEFAULT_HEADER_TIMEOUT_S, environ
            ),
            limit_concurrency=env(
                "LLMAAS_HTTP_LIMIT_CONCURRENCY", int, DEFAULT_LIMIT_CONCURRENCY, environ
            ),
            keep_alive_s=env("LLMAAS_HTTP_KEEP_ALIVE_S", float, DEFAULT_KEEP_ALIVE_S, environ),
        )


def _file_routers(edge: dict) -> str:
    """`[edge] routers = ["a:50051", "b:50051"]` (or the older `router = "a:50051"`)."""
    routers = edge.get("routers") or edge.get("router") or ""
    return ",".join(map(str, routers)) if isinstance(routers, list) else str(routers)
