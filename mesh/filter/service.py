"""gRPC sidecar: ``llmaas.v1.SecurityFilter/Check`` plus health and reflection.

The sidecar answers with a :class:`Verdict`; it never echoes the prompt (each
reason carries at most a truncated span). Whether a tenant is filtered at all
is decided by the router, never by a request field.

Bad input: a prompt longer than ``LLMAAS_MAX_BODY_BYTES`` (the edge's body
limit: no legitimate prompt is longer) is refused with INVALID_ARGUMENT before
any work; a ``user`` of any length is accepted (the history keeps a digest of a
long one). Long prompts are analysed in a process pool (see ``offload``), so
the event loop keeps answering health probes and short checks meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from concurrent.futures.process import BrokenProcessPool

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mesh import config, metrics, tls, tracing
from mesh.metrics_http import metrics_port, start_metrics_server
from mesh.pb import filter_pb2, filter_pb2_grpc

from . import offload
from .engine import PromptFilter

log = logging.getLogger("llmaas.filter")
SERVICE_NAME = filter_pb2.DESCRIPTOR.services_by_name["SecurityFilter"].full_name
GRACE_S = 5.0


def utf8_len(text: str) -> int:
    # Code points are 1-4 bytes: only encode (a copy) when the count can be either side.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class FilterServicer(filter_pb2_grpc.SecurityFilterServicer):
    def __init__(
        self,
        prompt_filter: PromptFilter | None = None,
        analyser: offload.Analyser | None = None,
        max_prompt_bytes: int | None = None,
    ) -> None:
        self.filter = prompt_filter or PromptFilter()
        self.analyser = analyser or offload.Analyser()
        self.max_prompt_bytes = (
            config.max_body_bytes() if max_prompt_bytes is None else max_prompt_bytes
        )

    async def Check(  # noqa: N802 (gRPC method name)
        self, request: filter_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> filter_pb2.Verdict:
        prompt = request.prompt
        cap = self.max_prompt_bytes
        if len(prompt) > cap or (4 * len(prompt) > cap and utf8_len(prompt) > cap):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"The prompt is {utf8_len(prompt)} bytes; the security filter checks prompts "
                f"of at most {cap} bytes (LLMAAS_MAX_BODY_BYTES).",
            )
        try:
            analysis = await self.analyser.analyse(prompt)
        except BrokenProcessPool:
            log.error("a filter pool process died; the next long prompt starts a new pool")
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "The security filter lost a worker process while checking this prompt; retry.",
            )
        verdict = self.filter.record(analysis, prompt, tenant=request.tenant, user=request.user)
        metrics.observe_filter_check(
            "allow" if verdict.allowed else "block", [r.rule for r in verdict.reasons]
        )
        if not verdict.allowed:
            # Log rule ids only: prompts are customer data.
            log.info(
                "blocked request_id=%s tenant=%s rules=%s score=%.2f",
                request.request_id,
                request.tenant,
                ",".join(r.rule for r in verdict.reasons),
                verdict.score,
            )
        return verdict.to_pb()


async def start(
    host: str = "127.0.0.1", port: int = 50052, prompt_filter: PromptFilter | None = None
) -> tuple[grpc.aio.Server, int]:
    """Start the server and return it with the bound port (``port=0`` picks one)."""
    server = grpc.aio.server(
        # LLMAAS_TLS=1: mTLS with the mesh CA, and only the router may call Check.
        interceptors=[*tls.server_interceptors("filter"), tracing.TracingInterceptor()],
        # Sized from LLMAAS_MAX_BODY_BYTES like every gRPC limit in the mesh; no SO_REUSEPORT,
        # so a second filter on a port in use fails instead of sharing it.
        options=[
            ("grpc.max_receive_message_length", config.grpc_message_limit()),
            ("grpc.max_send_message_length", config.grpc_message_limit()),
            ("grpc.so_reuseport", 0),
        ],
    )
    filter_pb2_grpc.add_SecurityFilterServicer_to_server(FilterServicer(prompt_filter), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            SERVICE_NAME,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    # Plain gRPC on a non-loopback host is refused (mesh.tls; same rule as rpc.add_port).
    tls.check_grpc_bind(host, "filter")
    creds = tls.server_credentials("filter")
    address = f"{host}:{port}"
    bound = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    if bound == 0:
        raise RuntimeError(f"the security filter cannot listen on {address} (port in use?)")
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, bound


async def serve(host: str = "127.0.0.1", port: int = 50052) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully (in-flight checks finish)."""
    tracing.setup_tracing("llmaas-filter")  # on only with OTEL_EXPORTER_OTLP_ENDPOINT set
    start_metrics_server(metrics_port("filter"))
    server, bound = await start(host, port)
    offload.start_all()  # spawn the pool now, not on the first long prompt
    # The rule tables are built now and never freed: keep them out of the GC's scans, which
    # otherwise land as multi-millisecond pauses inside checks (p99 of a 2 KB check).
    gc.collect()
    gc.freeze()
    log.info("security filter listening on %s:%d", host, bound)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping security filter")
    await server.stop(GRACE_S)
    offload.close_all()
    tracing.shutdown_tracing()
