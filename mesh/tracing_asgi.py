"""The edge's root span: a pure-ASGI middleware (streaming-safe, no BaseHTTPMiddleware).

Continues an incoming W3C `traceparent` header or starts a new trace; the span is current
while the endpoint runs, so `mesh.tracing.inject_metadata(...)` on the router call makes the
router's span its child. The span ends after the last body byte (SSE streams included).
Pass-through when tracing is off.
"""

from __future__ import annotations

from opentelemetry.trace import Status, StatusCode

from mesh import tracing


class TracingMiddleware:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not tracing.enabled():
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method, path = scope["method"], scope["path"]
        span, token = tracing.start_server_span(
            f"{method} {path}",
            headers,
            {
                "http.request.method": method,
                "url.path": path,
                "user_agent.original": headers.get("user-agent", ""),
            },
        )
        status = 500  # if the app dies before starting a response

        async def send_traced(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_traced)
        except Exception as exc:
            span.record_exception(exc)
            raise
        finally:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, str(status)))
            tracing.end_server_span(span, token)
