"""Tracing across in-process gRPC services, exported over real OTLP/gRPC to an in-memory sink.

edge (ASGI middleware) -> A.Stream (server stream) -> B.Echo / B.Fail (unary), plus a span
recorded afterwards with explicit timestamps (as the worker does for queue/prefill/decode).
"""

from __future__ import annotations

import asyncio
import time

import grpc
import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mesh import tracing
from mesh.errors import Unavailable
from mesh.rpc import build_server
from mesh.tracing_asgi import TracingMiddleware
from tools.dev.otlp_sink import OtlpSink

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def _server(service: str, handlers: dict) -> grpc.aio.Server:
    server, _health = build_server([service])  # tracing: installed by the bootstrap
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))
    return server


async def _b_echo(request: bytes, context) -> bytes:
    t0 = time.monotonic()
    parent = tracing.current_context()
    await asyncio.sleep(0.01)
    tracing.set_attributes(tracing.genai_request_attributes("chat", "smollm2:135m", 16, 0.0))
    tracing.set_attributes(tracing.genai_response_attributes("smollm2:135m", ["stop"], 7, 3))
    tracing.record_span(
        "engine.step",
        tracing.epoch_ns(t0),
        tracing.epoch_ns(time.monotonic()),
        parent,
        {"llmaas.tokens": 3},
    )
    tracing.record_phases(
        parent,
        submitted=t0,
        scheduled=t0 + 0.001,
        first_token=t0 + 0.004,
        finished=t0 + 0.009,
        attributes={"llmaas.worker": "w1"},
    )
    return request


async def _b_fail(request: bytes, context) -> bytes:
    raise Unavailable("no worker")


def _a_stream(b_address: str):
    async def stream(request: bytes, context):
        yield b"first"
        async with grpc.aio.insecure_channel(b_address) as ch:
            echo = ch.unary_unary("/test.B/Echo")
            yield await echo(b"hello", metadata=tracing.inject_metadata([("x-k", "v")]))
            with pytest.raises(grpc.aio.AioRpcError):
                await ch.unary_unary("/test.B/Fail")(b"", metadata=tracing.inject_metadata())
        await asyncio.sleep(0.05)  # after B: A's span must still be open
        yield b"last"

    return stream


@pytest.fixture
async def sink(monkeypatch):
    sink = OtlpSink()
    port = await sink.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    monkeypatch.delenv("OTEL_TRACES_SAMPLER", raising=False)
    yield sink
    tracing.shutdown_tracing()
    await sink.stop()


@pytest.fixture
async def services():
    b = _server(
        "test.B",
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_b_echo),
            "Fail": grpc.unary_unary_rpc_method_handler(_b_fail),
        },
    )
    b_port = b.add_insecure_port("127.0.0.1:0")
    a = _server(
        "test.A", {"Stream": grpc.unary_stream_rpc_method_handler(_a_stream(f"127.0.0.1:{b_port}"))}
    )
    a_port = a.add_insecure_port("127.0.0.1:0")
    await b.start()
    await a.start()
    yield f"127.0.0.1:{a_port}"
    await a.stop(0)
    await b.stop(0)


def _edge_app(a_address: str) -> Starlette:
    async def chat(request):
        async with grpc.aio.insecure_channel(a_address) as ch:
            call = ch.unary_stream("/test.A/Stream")(b"", metadata=tracing.inject_metadata())
            items = [item async for item in call]
        return PlainTextResponse(b"|".join(items).decode())

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    return TracingMiddleware(app)


async def _flush() -> None:
    # The exporter is synchronous; flushing on the loop thread would block the sink.
    assert await asyncio.to_thread(tracing.force_flush)


async def test_trace_links_edge_a_b_and_recorded_spans(sink, services):
    assert tracing.setup_tracing("svc-test")
    transport = httpx.ASGITransport(app=_edge_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        resp = await client.post(
            "/v1/chat/completions", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        )
    assert resp.text == "first|hello|last"
    await _flush()
    assert await sink.wait_for(lambda s: len(s) >= 8), sink.spans
    by_name = {s.name: s for s in sink.spans}
    edge = by_name["POST /v1/chat/completions"]
    a, b = by_name["test.A/Stream"], by_name["test.B/Echo"]
    fail, decode, step = by_name["test.B/Fail"], by_name["decode"], by_name["engine.step"]

    assert {s.trace_id for s in sink.spans} == {TRACE_ID}
    assert edge.parent_span_id == PARENT_ID
    assert a.parent_span_id == edge.span_id
    assert b.parent_span_id == a.span_id and fail.parent_span_id == a.span_id
    assert decode.parent_span_id == b.span_id and step.parent_span_id == b.span_id
    assert {s.service for s in sink.spans} == {"svc-test"}

    # The server-stream span covers the whole stream, B's call included.
    assert a.start_ns <= b.start_ns and b.end_ns <= a.end_ns
    assert a.end_ns - b.end_ns >= 40_000_000  # the 50 ms sleep after B
    assert edge.start_ns <= a.start_ns and a.end_ns <= edge.end_ns

    assert a.kind == b.kind == edge.kind == 2  # SPAN_KIND_SERVER
    assert a.attributes["rpc.system"] == "grpc" and a.attributes["rpc.method"] == "Stream"
    assert b.attributes["rpc.grpc.status_code"] == 0 and b.status_code == 0
    assert fail.attributes["rpc.grpc.status_code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert fail.status_code == 2  # STATUS_CODE_ERROR
    assert edge.attributes["http.response.status_code"] == 200
    assert b.attributes[tracing.GEN_AI_SYSTEM] == "llmaas"
    assert b.attributes[tracing.GEN_AI_REQUEST_MODEL] == "smollm2:135m"
    assert b.attributes[tracing.GEN_AI_REQUEST_MAX_TOKENS] == 16
    assert b.attributes[tracing.GEN_AI_USAGE_OUTPUT_TOKENS] == 3
    assert b.attributes[tracing.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]
    assert step.attributes["llmaas.tokens"] == 3 and step.start_ns < step.end_ns
    queue, prefill = by_name["queue"], by_name["prefill"]
    assert queue.parent_span_id == prefill.parent_span_id == b.span_id
    assert queue.end_ns == prefill.start_ns and prefill.end_ns == decode.start_ns
    assert abs(decode.end_ns - queue.start_ns - 9_000_000) < 1000
    assert decode.attributes["llmaas.worker"] == "w1"


async def test_new_trace_without_traceparent(sink, services):
    assert tracing.setup_tracing("svc-test")
    transport = httpx.ASGITransport(app=_edge_app(services))
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        await client.post("/v1/chat/completions")
    await _flush()
    assert await sink.wait_for(lambda s: len(s) >= 8)
    edge = next(s for s in sink.spans if s.name.startswith("POST"))
    assert edge.parent_span_id == "" and len({s.trace_id for s in sink.spans}) == 1


async def test_sampler_env_is_honoured(sink, services, monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert tracing.setup_tracing("svc-test")
    async with grpc.aio.insecure_channel(services) as ch:
        [x async for x in ch.unary_stream("/test.A/Stream")(b"")]
    await _flush()
    await asyncio.sleep(0.2)
    assert sink.spans == []


async def test_off_without_endpoint_is_pass_through(monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert not tracing.setup_tracing("svc-test")
    assert not tracing.enabled() and tracing.current_context() is None
    md = [("authorization", "Bearer k")]
    assert tracing.inject_metadata(md) is md
    handler = grpc.unary_unary_rpc_method_handler(_b_echo)

    async def continuation(_details):
        return handler

    assert await tracing.TracingInterceptor().intercept_service(continuation, None) is handler
    tracing.record_span("x", 1, 2, None)  # no-op, no error
    with tracing.span("x") as s:
        assert s is None


def test_sdk_disabled_wins(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.setup_tracing("svc-test")


async def test_health_probes_get_no_span(sink, services):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    assert tracing.setup_tracing("svc-test")
    async with grpc.aio.insecure_channel(services) as ch:
        for _ in range(3):  # what the router's probes do every second
            await health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""))
        [x async for x in ch.unary_stream("/test.A/Stream")(b"")]
    await _flush()
    assert await sink.wait_for(lambda s: any(x.name == "test.A/Stream" for x in s))
    assert not [s for s in sink.spans if "Health" in s.name]
