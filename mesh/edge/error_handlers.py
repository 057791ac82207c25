"""Every error the edge answers is an OpenAI error object with the right HTTP status."""

from __future__ import annotations

import logging

import grpc
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mesh.errors import INVALID_REQUEST, REQUEST_TIMEOUT, ErrorKind, MeshError, from_rpc_error

log = logging.getLogger("mesh.edge.app")  # the logger name the edge has always used
METHOD_NOT_ALLOWED = ErrorKind(
    grpc.StatusCode.UNIMPLEMENTED, 405, "invalid_request_error", "method_not_allowed"
)


def _error_response(err: MeshError, extra: dict[str, str] | None = None) -> JSONResponse:
    headers = {k: v for k, v in err.headers.items() if k.startswith("x-ratelimit-")}
    if err.retry_after is not None:
        headers["retry-after"] = str(max(1, int(err.retry_after + 0.999)))
    if err.kind is REQUEST_TIMEOUT:
        headers["connection"] = "close"  # the rest of a slow body is not waited for
    return JSONResponse(
        err.to_openai(), status_code=err.http_status, headers={**headers, **(extra or {})}
    )


async def on_mesh_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MeshError)
    return _error_response(exc)


async def on_rpc_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return _error_response(from_rpc_error(exc))


async def on_client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        err = MeshError(
            f"Method {request.method} is not allowed on {request.url.path}.",
            kind=METHOD_NOT_ALLOWED,
        )
        return _error_response(err, dict(exc.headers or {}))
    if exc.status_code == 404:
        err = MeshError(
            f"Unknown request URL: {request.method} {request.url.path}. Check the URL for typos; "
            "the API lives under /v1.",
            kind=INVALID_REQUEST,
            code="unknown_url",
        )
        return JSONResponse(err.to_openai(), status_code=404)
    err = MeshError(str(exc.detail), kind=INVALID_REQUEST, code="invalid_request_error")
    return JSONResponse(
        err.to_openai(), status_code=exc.status_code, headers=dict(exc.headers or {})
    )


async def on_internal_error(request: Request, exc: Exception) -> Response:
    # Runs in ServerErrorMiddleware, outside RequestIdMiddleware: add the id here.
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    err = MeshError(
        "The server had an error while processing your request. Retry, and contact support "
        "with the x-request-id if it persists."
    )
    request_id = request.scope.get("state", {}).get("request_id", "")
    return JSONResponse(err.to_openai(), status_code=500, headers={"x-request-id": request_id})
