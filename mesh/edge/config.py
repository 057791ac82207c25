"""EdgeConfig: the HTTP edge's settings, from LLMAAS_* env (file section `[edge]`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from mesh.config import ConfigError, env, load_file


@dataclass(slots=True)
class EdgeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    router_address: str = "127.0.0.1:50051"
    # Deadline sent to the router with every call; the router caps it with its own limit.
    request_timeout_s: float = 600.0
    health_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"LLMAAS_HTTP_PORT={self.port} is out of range")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> EdgeConfig:
        environ = dict(os.environ) if environ is None else environ
        edge = load_file(environ).get("edge", {})
        router_port = env("LLMAAS_ROUTER_PORT", int, 50051, environ)
        return cls(
            host=env("LLMAAS_HTTP_HOST", str, str(edge.get("host", "127.0.0.1")), environ),
            port=env("LLMAAS_HTTP_PORT", int, int(edge.get("port", 8000)), environ),
            router_address=env(
                "LLMAAS_ROUTER_ADDR",
                str,
                str(edge.get("router", f"127.0.0.1:{router_port}")),
                environ,
            ),
            request_timeout_s=env(
                "LLMAAS_REQUEST_TIMEOUT_S",
                float,
                float(edge.get("request_timeout_s", 600.0)),
                environ,
            ),
        )
