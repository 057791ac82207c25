"""`python -m mesh.router`: the router process (Inference API on LLMAAS_ROUTER_PORT)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging

import uvloop

from mesh import tls, tracing
from mesh.alerts import Alerts
from mesh.catalog import Catalog
from mesh.config import ConfigError, load_file
from mesh.metrics_http import metrics_port, start_metrics_server
from mesh.observations import Observations
from mesh.pb import filter_pb2_grpc, inference_pb2, inference_pb2_grpc
from mesh.router import admin_service, registry_service
from mesh.router.accounts import build_access
from mesh.router.config import RouterConfig
from mesh.router.content import ContentRecorder
from mesh.router.health import MeshHealth
from mesh.router.retention import Retention
from mesh.router.service import InferenceServicer
from mesh.router.workers import WorkerPool
from mesh.rpc import (
    BindError,
    add_port,
    build_server,
    open_channel,
    serve_until_signal,
    set_serving,
)

log = logging.getLogger("mesh.router")

SERVICE = inference_pb2.DESCRIPTOR.services_by_name["Inference"].full_name


async def _reload_catalog(catalog: Catalog, interval_s: float) -> None:
    """Operators edit the catalog file; the change applies within `interval_s` (no restart)."""
    while True:
        await asyncio.sleep(interval_s)
        catalog.reload_if_changed()


async def serve(config: RouterConfig) -> None:
    # First the bind: plain gRPC on a non-loopback host is refused (mesh.tls.check_grpc_bind)
    # and a port already taken (another mesh) fails here, before any state is opened.
    # With LLMAAS_TLS=1: only mesh-CA certificates connect (add_port), and the caller's role
    # must be allowed (edge/admin/client here; the Admin API for the admin role only).
    # Plain: Registry (workers announcing) needs LLMAAS_MESH_TOKEN (mesh.meshtoken).
    service_names = [SERVICE, admin_service.SERVICE_NAME, registry_service.SERVICE_NAME]
    server, health_servicer = build_server(service_names, role="router")
    port = add_port(server, config.host, config.port, "router")
    catalog = Catalog.load(config.catalog_path)
    tracing.setup_tracing("llmaas-router")  # on only with OTEL_EXPORTER_OTLP_ENDPOINT set
    start_metrics_server(metrics_port("router"))
    observations = Observations()
    alerts = Alerts.from_config(load_file(), observations)
    pool = WorkerPool(
        [w.address for w in config.workers],
        health_interval_s=config.health_interval_s,
        observations=observations,
        queue_timeout_s=config.queue_timeout_s,
        max_queued_per_tenant=config.max_queued_per_tenant,
    )
    filter_channel = open_channel(config.filter_address, peer_role="filter")
    # Tenants, keys (LLMAAS_DEV_KEY / LLMAAS_ADMIN_KEY upserted), limits, usage, audit.
    accounts = build_access(load_file())
    await accounts.start()
    # Prompts/answers of tenants with content logging on, sealed with per-tenant AES-256-GCM
    # keys; retention purges them (and expired usage detail / audit records) on a schedule.
    content_log = ContentRecorder.from_env()
    retention = Retention.from_env(accounts, content_log)
    servicer = InferenceServicer(
        config,
        pool,
        catalog,
        accounts,
        filter_pb2_grpc.SecurityFilterStub(filter_channel),
        observations=observations,
        alerts=alerts,
        content_log=content_log,
    )
    inference_pb2_grpc.add_InferenceServicer_to_server(servicer, server)
    admin_service.add_to_server(accounts, server)
    registry_service.add_to_server(pool, server)  # workers Announce / Withdraw themselves
    mesh_health = MeshHealth(
        health_servicer,
        pool,
        filter_channel,
        config.expected_models(),
        interval_s=config.health_interval_s,
    )
    await pool.start()
    if accounts.shared is not None:  # LLMAAS_REDIS_URL: workers announced to any router
        accounts.shared.share_workers(pool)
    mesh_health.start()
    reload_task = asyncio.create_task(_reload_catalog(catalog, config.catalog_reload_s))
    alerts.start()
    retention.start()
    await set_serving(health_servicer, service_names, True)
    log.info("%s", tls.tls_summary())
    log.info(
        "router on %s:%d, filter %s, workers %s",
        config.host,
        port,
        config.filter_address,
        [f"{w.model}={w.address}" for w in config.workers],
    )
    try:
        await serve_until_signal(server)
    finally:
        reload_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reload_task
        await mesh_health.close()
        await pool.close()
        await filter_channel.close()
        await retention.close()
        await accounts.close()
        content_log.close()
        await alerts.stop()
        tracing.shutdown_tracing()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mesh.router", description=__doc__)
    parser.add_argument("--port", type=int, help="overrides LLMAAS_ROUTER_PORT")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = RouterConfig.from_env()
    if args.port:
        config.port = args.port
    try:
        uvloop.run(serve(config))
    except (ConfigError, BindError) as exc:  # a refused bind: one clear line, no traceback
        raise SystemExit(f"router: {exc}") from exc


if __name__ == "__main__":
    main()
