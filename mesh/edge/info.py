"""The read-only endpoints: models, health, the OpenAPI document and the console's summary."""

from __future__ import annotations

import json
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mesh import tracing
from mesh.edge import openai_schema as schema
from mesh.edge.requests import MAX_MODEL_CHARS
from mesh.edge.router_calls import call_metadata, router_of
from mesh.errors import NotFound, from_rpc_error
from mesh.pb import inference_pb2
from mesh.wire import HEALTH_FILTER as FILTER
from mesh.wire import HEALTH_MESH as MESH
from mesh.wire import HEALTH_MODEL_PREFIX as MODEL_PREFIX
from mesh.wire import MD_AUTHORIZATION, MD_REQUEST_ID


async def list_models(request: Request) -> Response:
    reply, _ = await router_of(request).unary(
        "ListModels", inference_pb2.ListModelsRequest(), metadata=call_metadata(request), timeout=10
    )
    return JSONResponse({"object": "list", "data": [schema.model_json(m) for m in reply.models]})


async def get_model(request: Request) -> Response:
    model_id = request.path_params["model_id"]
    if len(model_id) > MAX_MODEL_CHARS:
        raise NotFound(  # no model has such an id: answered without asking the router
            f"The model id is {len(model_id)} characters; model ids are at most "
            f"{MAX_MODEL_CHARS}. List the served models with GET /v1/models.",
            param="model",
        )
    reply, _ = await router_of(request).unary(
        "GetModel",
        inference_pb2.GetModelRequest(id=model_id),
        metadata=call_metadata(request),
        timeout=10,
    )
    return JSONResponse(schema.model_json(reply))


async def fetch_summary(request: Request, key: str) -> dict[str, Any]:
    """The console's summary from the router, scoped by the router to the caller's key."""
    md = [
        (MD_AUTHORIZATION, f"Bearer {key}"),
        (MD_REQUEST_ID, request.scope["state"]["request_id"]),
    ]
    window = _int_param(request, "window", 3600, 60, 7 * 86400)
    bucket = _int_param(request, "bucket", 60, 1, 3600)
    try:
        reply, _ = await router_of(request).unary(
            "GetConsoleSummary",
            inference_pb2.ConsoleSummaryRequest(window_seconds=window, bucket_seconds=bucket),
            metadata=tuple(tracing.inject_metadata(md)),
            timeout=10,
        )
    except grpc.aio.AioRpcError as err:
        raise from_rpc_error(err) from None
    return json.loads(reply.json)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(request.query_params.get(name, default))))
    except ValueError:
        return default


async def openapi(request: Request) -> Response:
    """The published OpenAPI document (also `mesh/edge/openapi.json` in the repository)."""
    return JSONResponse(request.app.state.openapi)


async def health(request: Request) -> Response:
    """200 once a router reports router, filter and one worker per served model ready (the
    router knows); with several routers, `routers` gives each one's own status."""
    replies = await router_of(request).health_lists()
    routers = {address: _router_status(reply) for address, reply in replies}
    serving = [r for _, r in replies if not isinstance(r, grpc.aio.AioRpcError)]
    if not serving:
        err = replies[0][1]
        body: dict[str, Any] = {
            "status": "unavailable",
            "router": f"unreachable ({err.code().name})",
        }
        if len(replies) > 1:
            body["routers"] = routers
        return JSONResponse(body, status_code=503)
    names = [_names(reply) for reply in serving]
    ready = [n for n in names if n.get(MESH) == "SERVING"]
    best = ready[0] if ready else names[0]
    body = {
        "status": "ok" if ready else "unavailable",
        "router": best.get("", "UNKNOWN"),
        "filter": best.get(FILTER, "UNKNOWN"),
        "models": {
            n.removeprefix(MODEL_PREFIX): s for n, s in best.items() if n.startswith(MODEL_PREFIX)
        },
    }
    if len(replies) > 1:
        body["routers"] = routers
    return JSONResponse(body, status_code=200 if ready else 503)


def _names(reply: health_pb2.HealthListResponse) -> dict[str, str]:
    return {
        name: health_pb2.HealthCheckResponse.ServingStatus.Name(s.status)
        for name, s in reply.statuses.items()
    }


def _router_status(reply: Any) -> str:
    """One router's line in /health: its mesh readiness, or why it could not be asked."""
    if isinstance(reply, grpc.aio.AioRpcError):
        return f"unreachable ({reply.code().name})"
    return _names(reply).get(MESH, "UNKNOWN")
