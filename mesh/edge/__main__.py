"""`python -m mesh.edge`: the OpenAI-compatible HTTP edge (uvicorn, uvloop, httptools)."""

from __future__ import annotations

import argparse
import logging

from mesh import tls, tracing
from mesh.edge.app import create_app
from mesh.edge.config import EdgeConfig


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
        loop="uvloop",
        http="httptools",
        log_level="info",
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
