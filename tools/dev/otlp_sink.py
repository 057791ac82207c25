"""A tiny in-memory OTLP/gRPC trace collector, for tests and for looking at traces locally.

    python -m tools.dev.otlp_sink --port 4317     # prints one line per span received

then run the mesh with `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317`.
In async tests: `sink = OtlpSink(); port = await sink.start()`; `sink.spans` are
`SpanRecord`s. In sync tests: `sink = ThreadedSink()`; `sink.port`, `sink.wait_for(...)`.
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from mesh.aio import wait_event


@dataclass(slots=True)
class SpanRecord:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    kind: int
    start_ns: int
    end_ns: int
    status_code: int  # 0 unset, 1 ok, 2 error
    attributes: dict[str, Any] = field(default_factory=dict)


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, which) if which else None


def _records(request: trace_service_pb2.ExportTraceServiceRequest) -> list[SpanRecord]:
    out = []
    for rs in request.resource_spans:
        res = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for sp in ss.spans:
                out.append(
                    SpanRecord(
                        service=str(res.get("service.name", "")),
                        name=sp.name,
                        trace_id=sp.trace_id.hex(),
                        span_id=sp.span_id.hex(),
                        parent_span_id=sp.parent_span_id.hex(),
                        kind=sp.kind,
                        start_ns=sp.start_time_unix_nano,
                        end_ns=sp.end_time_unix_nano,
                        status_code=sp.status.code,
                        attributes={kv.key: _value(kv.value) for kv in sp.attributes},
                    )
                )
    return out


class OtlpSink(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, echo: bool = False) -> None:
        self.spans: list[SpanRecord] = []
        self.echo = echo
        self._server: grpc.aio.Server | None = None
        self._changed = asyncio.Event()

    async def Export(self, request, context):  # noqa: N802 - the OTLP method name
        for rec in _records(request):
            self.spans.append(rec)
            if self.echo:
                print(
                    f"{rec.service:>10} {rec.trace_id[:8]} {rec.span_id[:8]}<-"
                    f"{rec.parent_span_id[:8] or '--------'} {rec.name} "
                    f"{(rec.end_ns - rec.start_ns) / 1e6:.1f}ms {rec.attributes}",
                    flush=True,
                )
        self._changed.set()
        return trace_service_pb2.ExportTraceServiceResponse()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        bound = self._server.add_insecure_port(f"{host}:{port}")
        await self._server.start()
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop(0)

    async def wait_for(self, predicate, timeout_s: float = 10.0) -> bool:
        """Waits until predicate(self.spans) is true; returns whether it became true."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not predicate(self.spans):
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._changed.clear()
            if not await wait_event(self._changed, left):
                return predicate(self.spans)
        return True


class ThreadedSink:
    """An OtlpSink on its own event loop thread, for synchronous tests (e.g. e2e)."""

    def __init__(self, port: int = 0) -> None:
        import threading  # noqa: PLC0415

        self.sink = OtlpSink()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="otlp-sink"
        )
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.sink.start(port=port), self._loop).result(
            10
        )

    @property
    def spans(self) -> list[SpanRecord]:
        return list(self.sink.spans)

    def wait_for(self, predicate, timeout_s: float = 30.0) -> bool:
        return asyncio.run_coroutine_threadsafe(
            self.sink.wait_for(predicate, timeout_s), self._loop
        ).result(timeout_s + 5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.sink.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def _main(port: int) -> None:
    sink = OtlpSink(echo=True)
    bound = await sink.start(port=port)
    print(f"OTLP sink on 127.0.0.1:{bound}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4317)
    asyncio.run(_main(parser.parse_args().port))


if __name__ == "__main__":
    main()
