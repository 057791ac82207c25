"""The HTTP edge: OpenAI's HTTP API in front of the router's gRPC `Inference` service.

No business logic here: validate the JSON, call the router with the caller's key and
request id as metadata, and render the answer (JSON, SSE, or an OpenAI error object).
This module assembles the app; the work lives by job in:

- `router_calls`: the router client, call metadata, copied headers, client disconnects;
- `router_pool`: the routers (LLMAAS_ROUTER_ADDRS), their health, round robin and failover;
- `generation`: chat completions, completions and embeddings;
- `info`: models, health, the OpenAPI document and the console's summary;
- `error_handlers`: exceptions to OpenAI error objects;
- `request_id`: the `x-request-id` middleware.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from mesh import tracing
from mesh.console.routes import console_routes
from mesh.edge.config import EdgeConfig
from mesh.edge.error_handlers import (
    on_client_gone,
    on_http_error,
    on_internal_error,
    on_mesh_error,
    on_rpc_error,
)
from mesh.edge.generation import chat_completions, completions, embeddings
from mesh.edge.info import fetch_summary, get_model, health, list_models, openapi
from mesh.edge.limits import BodyLimitMiddleware
from mesh.edge.openapi import openapi_document
from mesh.edge.request_id import RequestIdMiddleware
from mesh.edge.router_calls import ClientGone, RouterClient
from mesh.edge.router_pool import RouterPool
from mesh.errors import MeshError
from mesh.metrics_http import metrics_endpoint
from mesh.tracing_asgi import TracingMiddleware

__all__ = ["ClientGone", "RouterClient", "create_app"]


def create_app(config: EdgeConfig | None = None) -> Starlette:
    config = config or EdgeConfig.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = RouterPool.open(config.routers, timeout_s=config.health_timeout_s)
        app.state.config = config
        app.state.router = pool
        pool.start()
        try:
            yield
        finally:
            await pool.close()
            tracing.shutdown_tracing()

    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *console_routes(fetch_summary),
    ]
    handlers = {
        MeshError: on_mesh_error,
        grpc.RpcError: on_rpc_error,
        ClientGone: on_client_gone,
        HTTPException: on_http_error,
        Exception: on_internal_error,
    }
    middleware = [
        Middleware(TracingMiddleware),
        Middleware(RequestIdMiddleware),
        Middleware(BodyLimitMiddleware, config.max_body_bytes, config.body_timeout_s),
    ]  # tracing outermost; the body limit inside, so its 413/408 carry x-request-id
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan
    )
    app.state.openapi = openapi_document()
    return app
