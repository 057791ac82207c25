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

import gc
import logging
from concurrent.futures.process import BrokenProcessPool

import grpc

from mesh import config, metrics, rpc, tracing
from mesh.errors import InvalidRequest, Unavailable
from mesh.metrics_http import metrics_port, start_metrics_server
from mesh.pb import filter_pb2, filter_pb2_grpc

from . import learned, ngram_kernel, offload
from .behavior_redis import RedisBehavior
from .engine import PromptFilter
from .heap import keep_freed_memory
from .instructions import span_problem
from .tool_fields import ToolFields

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
        # LLMAAS_REDIS_URL: the behaviour history in Redis, shared by every filter replica.
        self.filter = prompt_filter or PromptFilter(shared=RedisBehavior.from_env())
        self.analyser = analyser or offload.Analyser()
        self.max_prompt_bytes = (
            config.max_body_bytes() if max_prompt_bytes is None else max_prompt_bytes
        )

    async def Check(  # noqa: N802 (gRPC method name)
        self, request: filter_pb2.CheckRequest, context: grpc.aio.ServicerContext
    ) -> filter_pb2.Verdict:
        prompt = request.prompt
        tools = ToolFields.of(request.tool_definitions, request.tool_results)
        cap = self.max_prompt_bytes
        size = len(prompt) + tools.num_chars
        # Refusals are MeshErrors: mesh.rpc's error interceptor gives them their status.
        if size > cap or (4 * size > cap and self._num_bytes(prompt, tools) > cap):
            raise InvalidRequest(
                f"The prompt and tool fields are {self._num_bytes(prompt, tools)} bytes; the "
                f"security filter checks at most {cap} bytes (LLMAAS_MAX_BODY_BYTES)."
            )
        instructions = [(s.start, s.end) for s in request.instructions]
        problem = span_problem(instructions, len(prompt))
        if problem:
            raise InvalidRequest(f"CheckRequest.instructions: {problem}.")
        try:
            analysis = await self.analyser.analyse(prompt, tools, instructions)
        except BrokenProcessPool:
            log.error("a filter pool process died; the next long prompt starts a new pool")
            raise Unavailable(
                "The security filter lost a worker process while checking this prompt; retry."
            ) from None
        verdict = await self.filter.record_async(
            analysis, prompt, tenant=request.tenant, user=request.user
        )
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

    @staticmethod
    def _num_bytes(prompt: str, tools: ToolFields) -> int:
        return utf8_len(prompt) + sum(map(utf8_len, tools.definitions + tools.results))


async def start(
    host: str = "127.0.0.1", port: int = 50052, prompt_filter: PromptFilter | None = None
) -> tuple[grpc.aio.Server, int]:
    """Start the server and return it with the bound port (``port=0`` picks one)."""
    # mesh.rpc's bootstrap: with LLMAAS_TLS=1 only the router's certificate may call Check;
    # plain gRPC on a non-loopback host is refused; a port in use is a BindError.
    server, health_servicer = rpc.build_server([SERVICE_NAME], role="filter")
    filter_pb2_grpc.add_SecurityFilterServicer_to_server(FilterServicer(prompt_filter), server)
    bound = rpc.add_port(server, host, port, "filter")
    await server.start()
    await rpc.set_serving(health_servicer, [SERVICE_NAME], True)
    return server, bound


async def serve(host: str = "127.0.0.1", port: int = 50052) -> None:
    """Run until SIGTERM/SIGINT, then stop gracefully (in-flight checks finish)."""
    tracing.setup_tracing("llmaas-filter")  # on only with OTEL_EXPORTER_OTLP_ENDPOINT set
    start_metrics_server(metrics_port("filter"))
    server, bound = await start(host, port)

    async def ready() -> None:
        # the learned layer's weights and C passes load (compiled once a machine) now, not
        # on the first request
        learned.model()
        log.info("learned layer passes in %s", "C" if ngram_kernel.available() else "numpy")
        offload.start_all()  # spawn the pool now, not on the first long prompt
        # The rule tables are built now and never freed: keep them out of the GC's scans,
        # which otherwise land as multi-millisecond pauses inside checks (p99 of a 2 KB check).
        gc.collect()
        gc.freeze()
        keep_freed_memory()  # and a long check's arrays stay in the heap for the next
        log.info("security filter listening on %s:%d", host, bound)

    await rpc.serve_until_signal(server, start=False, on_ready=ready, grace_s=GRACE_S)
    log.info("security filter stopped")
    offload.close_all()
    tracing.shutdown_tracing()
