"""Distributed tracing: OpenTelemetry SDK + OTLP/gRPC, configured only by standard env vars.

`setup_tracing(name)` turns tracing on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set and `OTEL_SDK_DISABLED` is not true. Otherwise
no provider is installed and every helper here returns at its first line (one attribute
read): tracing off costs nothing measurable. `OTEL_SERVICE_NAME` overrides the name given
(standard precedence); `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*` and `OTEL_EXPORTER_OTLP_*`
are read by the SDK itself. Context travels as W3C `traceparent` in gRPC metadata.

- servers: `TracingInterceptor()`, installed by `mesh.rpc.build_server` on every mesh
  server; the span covers the whole RPC, a server stream included;
- clients: `metadata=inject_metadata([...])` on each outgoing call;
- spans timed elsewhere (the worker's engine thread): `record_span(...)` afterwards;
- the HTTP edge: `mesh.tracing_asgi.TracingMiddleware`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode

from mesh.interceptor import wrap_handler

log = logging.getLogger(__name__)

# GenAI semantic conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/).
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"  # "chat" | "text_completion" | "embeddings"
GEN_AI_SYSTEM = "gen_ai.system"
GEN_AI_SYSTEM_VALUE = "llmaas"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
# llmaas-specific, namespaced like the conventions.
LLMAAS_TENANT = "llmaas.tenant"
LLMAAS_WORKER = "llmaas.worker"

# gRPC codes that are server faults (OTel RPC conventions); others are the caller's doing.
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# Exceptions that end an RPC without being a fault of the handler's code.
_NOT_FAULTS = (asyncio.CancelledError, GeneratorExit, grpc.aio.AbortError)
# Housekeeping RPCs (health probes, reflection, the router's load polling, every second per
# peer) get no span: they belong to no request and would flood the collector with root traces.
UNTRACED_PREFIXES = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    "/llmaas.v1.Worker/GetLoad",
    "/llmaas.v1.Worker/WatchLoad",
    "/llmaas.v1.Worker/Info",
)


class _State:
    tracer: trace.Tracer | None = None  # None = tracing off; checked first by every helper
    provider: Any = None
    global_set = False


_state = _State()


def _truthy(raw: str | None) -> bool:
    return (raw or "").strip().lower() in ("1", "true", "yes", "on")


def tracing_endpoint(environ: Mapping[str, str] | None = None) -> str | None:
    """The OTLP endpoint tracing would export to, or None when tracing is off."""
    environ = os.environ if environ is None else environ
    if _truthy(environ.get("OTEL_SDK_DISABLED")):
        return None
    return (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or None
    )


def setup_tracing(service_name: str) -> bool:
    """Installs the OTLP pipeline when configured; returns whether tracing is on.

    Safe to call again (tests): the previous pipeline is flushed and replaced.
    """
    shutdown_tracing()
    endpoint = tracing_endpoint()
    if endpoint is None:
        return False
    # SDK imports only when on: a process with tracing off never loads them.
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    provider = TracerProvider(resource=Resource.create(attrs))  # sampler from OTEL_TRACES_*
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if not _state.global_set:  # the global may be set once per process; ours is _state
        trace.set_tracer_provider(provider)
        _state.global_set = True
    _state.provider = provider
    _state.tracer = provider.get_tracer("llmaas")
    log.info("tracing on: %s -> %s", service_name, endpoint)
    return True


def shutdown_tracing(timeout_ms: int = 5000) -> None:
    """Flushes pending spans and turns tracing off (call on process shutdown)."""
    provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is not None:
        provider.force_flush(timeout_ms)
        provider.shutdown()


def force_flush(timeout_ms: int = 5000) -> bool:
    return _state.provider.force_flush(timeout_ms) if _state.provider is not None else True


def enabled() -> bool:
    return _state.tracer is not None


# --- context propagation -----------------------------------------------------------------


def inject_metadata(md: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """Outgoing gRPC metadata with the current trace context (`traceparent`) appended."""
    md = [] if md is None else md
    if _state.tracer is None:
        return md
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [*md, *carrier.items()]


def extract_context(pairs: Sequence[tuple[str, Any]] | Mapping[str, Any] | None) -> Context:
    """The trace context in incoming metadata or headers (empty context when absent)."""
    items = pairs.items() if isinstance(pairs, Mapping) else (pairs or ())
    carrier = {k.lower(): v for k, v in items if isinstance(v, str)}
    return propagate.extract(carrier)


def current_context() -> Context | None:
    """Capture in async code; pass to `record_span` later. None when tracing is off."""
    return otel_context.get_current() if _state.tracer is not None else None


# --- spans -------------------------------------------------------------------------------


def record_span(
    name: str,
    start_ns: int,
    end_ns: int,
    parent_context: Context | None,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """A finished span with explicit epoch-ns timestamps (e.g. worker queue/prefill/decode)."""
    if _state.tracer is None:
        return
    span = _state.tracer.start_span(
        name, context=parent_context, start_time=start_ns, attributes=dict(attributes or {})
    )
    span.end(end_time=max(start_ns, end_ns))


def epoch_ns(t: float, clock=time.monotonic) -> int:
    """Converts a `clock()` reading (seconds; monotonic or perf_counter) to epoch ns."""
    return time.time_ns() - int((clock() - t) * 1e9)


def record_phases(
    parent_context: Context | None,
    *,
    submitted: float,
    scheduled: float,
    first_token: float,
    finished: float,
    attributes: Mapping[str, Any] | None = None,
    clock=time.monotonic,
) -> None:
    """The worker's `queue`, `prefill` and `decode` spans from four `clock()` readings."""
    if _state.tracer is None or parent_context is None:
        return
    offset = time.time_ns() - int(clock() * 1e9)  # one offset: the phases stay contiguous
    marks = [offset + int(t * 1e9) for t in (submitted, scheduled, first_token, finished)]
    for name, start, end in zip(("queue", "prefill", "decode"), marks, marks[1:], strict=False):
        record_span(name, start, end, parent_context, attributes)


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A current child span around a block; yields None when tracing is off."""
    if _state.tracer is None:
        yield None
        return
    with _state.tracer.start_as_current_span(name, attributes=dict(attributes or {})) as s:
        yield s


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Adds attributes to the current span (None values are skipped)."""
    if _state.tracer is None:
        return
    trace.get_current_span().set_attributes({k: v for k, v in attributes.items() if v is not None})


def genai_request_attributes(
    operation: str, model: str, max_tokens: int | None = None, temperature: float | None = None
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        GEN_AI_SYSTEM: GEN_AI_SYSTEM_VALUE,
        GEN_AI_OPERATION_NAME: operation,
        GEN_AI_REQUEST_MODEL: model,
    }
    if max_tokens:
        attrs[GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    if temperature is not None:
        attrs[GEN_AI_REQUEST_TEMPERATURE] = temperature
    return attrs


def genai_response_attributes(
    model: str,
    finish_reasons: Sequence[str],
    input_tokens: int,
    output_tokens: int,
    response_id: str | None = None,
) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        GEN_AI_RESPONSE_MODEL: model,
        GEN_AI_RESPONSE_FINISH_REASONS: list(finish_reasons),
        GEN_AI_USAGE_INPUT_TOKENS: input_tokens,
        GEN_AI_USAGE_OUTPUT_TOKENS: output_tokens,
    }
    if response_id:
        attrs[GEN_AI_RESPONSE_ID] = response_id
    return attrs


# --- gRPC server interceptor -------------------------------------------------------------


class TracingInterceptor(grpc.aio.ServerInterceptor):
    """Starts a SERVER span per RPC, child of the caller's `traceparent`.

    Pass-through when tracing is off. `mesh.rpc.build_server` installs it before the error
    interceptor, which turns a MeshError into an abort; the span records the status either
    way (`_status_code`).
    """

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if _state.tracer is None or handler is None:
            return handler
        method = handler_call_details.method
        if method.startswith(UNTRACED_PREFIXES):
            return handler
        return wrap_handler(handler, _rpc_span(method, handler_call_details.invocation_metadata))


def start_server_span(name: str, carrier, attributes: Mapping[str, Any]) -> tuple[Any, object]:
    """Starts a SERVER span, child of the context in `carrier` (metadata or headers), and
    makes it current. Returns (span, token); end with `end_server_span`. Tracing must be on.
    """
    parent = extract_context(carrier)
    s = _state.tracer.start_span(  # type: ignore[union-attr]
        name, context=parent, kind=SpanKind.SERVER, attributes=dict(attributes)
    )
    return s, otel_context.attach(trace.set_span_in_context(s, parent))


def end_server_span(s, token) -> None:
    s.end()
    # Attach and detach run in one task (grpc.aio iterates a handler within its RPC task,
    # ASGI runs a request in one task); guard anyway so a generator finalised elsewhere
    # cannot raise here.
    with contextlib.suppress(Exception):
        otel_context.detach(token)


def _start_rpc_span(method: str, md) -> tuple[Any, object]:
    service, _, name = method.lstrip("/").rpartition("/")
    return start_server_span(
        method.lstrip("/"), md, {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
    )


def _finish_server_span(s, token, context, exc: BaseException | None) -> None:
    code = _status_code(context, exc)
    s.set_attribute("rpc.grpc.status_code", code.value[0])
    if code in _SERVER_FAULTS:
        s.set_status(Status(StatusCode.ERROR, code.name))
    if exc is not None and not isinstance(exc, _NOT_FAULTS):
        s.record_exception(exc)
    end_server_span(s, token)


def _status_code(context, exc: BaseException | None) -> grpc.StatusCode:
    kind = getattr(exc, "kind", None)  # MeshError
    if kind is not None:
        return kind.grpc_code
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):  # caller went away
        return grpc.StatusCode.CANCELLED
    code = None
    with contextlib.suppress(Exception):
        code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN if exc is not None else grpc.StatusCode.OK


def _rpc_span(method: str, md):
    @contextlib.asynccontextmanager
    async def around(context) -> AsyncIterator[None]:
        # Entered at the first step of the call and left after its last message, so the
        # span covers a whole stream (and the handler sees it as current throughout).
        s, token = _start_rpc_span(method, md)
        exc: BaseException | None = None
        try:
            yield
        except BaseException as e:
            exc = e
            raise
        finally:
            _finish_server_span(s, token, context, exc)

    return around
