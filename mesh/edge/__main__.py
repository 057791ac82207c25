"""`python -m mesh.edge`: the OpenAI-compatible HTTP edge (uvicorn, uvloop, httptools)."""

from __future__ import annotations

import argparse
import logging

from mesh import tls, tracing
from mesh.edge.app import create_app
from mesh.edge.config import EdgeConfig
from mesh.edge.http_protocol import limited_protocol


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mesh.edge", description=__doc__)
    parser.add_argument("--port", type=int, help="overrides LLMAAS_HTTP_PORT")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = EdgeConfig.from_env()
    if args.port:
        config.port = args.port
    tracing.setup_tracing("llmaas-edge")  # on only with OTEL_EXPORTER_OTLP_ENDPOINT set
    # HTTPS with TLS 1.3 as the floor when a certificate is configured (LLMAAS_TLS=1 or
    # LLMAAS_EDGE_CERT/KEY); plain HTTP only on loopback or with LLMAAS_EDGE_TLS=off.
    tls.run_uvicorn(
        create_app(config),
        config.host,
        config.port,
        **uvicorn_limits(config),
        loop="uvloop",
        log_level="info",
        timeout_graceful_shutdown=5,
    )


def uvicorn_limits(config: EdgeConfig) -> dict[str, object]:
    """uvicorn's own limits (defaults in `mesh.edge.config`): httptools with header size and
    time limits, concurrent connections, keep-alive, and no WebSocket upgrades (none served)."""
    return {
        "http": limited_protocol(config.max_header_bytes, config.header_timeout_s),
        "ws": "none",
        "limit_concurrency": config.limit_concurrency,
        "timeout_keep_alive": config.keep_alive_s,
    }


if __name__ == "__main__":
    main()
