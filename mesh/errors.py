"""Mesh errors and the one table mapping them to gRPC codes, HTTP statuses and OpenAI types.

A servicer raises a MeshError (or an exception registered with `register_kinds`); the
server's error interceptor (`mesh.rpc`, on every mesh server) turns it into a gRPC status with
trailing metadata; a client turns the status back into the same MeshError
(`from_rpc_error`); the edge renders it as an OpenAI error object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import grpc

# Trailing-metadata keys that carry what a gRPC status alone cannot (the wire contract).
from mesh.wire import (
    MD_COPIED_PREFIXES,
    MD_ERROR_CODE,
    MD_ERROR_PARAM,
    MD_HTTP_STATUS,
    MD_RETRY_AFTER,
)


@dataclass(frozen=True, slots=True)
class ErrorKind:
    grpc_code: grpc.StatusCode
    http_status: int
    openai_type: str
    default_code: str


INVALID_REQUEST = ErrorKind(
    grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_request_error", "invalid_request_error"
)
UNAUTHENTICATED = ErrorKind(
    grpc.StatusCode.UNAUTHENTICATED, 401, "authentication_error", "invalid_api_key"
)
PERMISSION_DENIED = ErrorKind(
    grpc.StatusCode.PERMISSION_DENIED, 403, "permission_error", "model_not_allowed"
)
NOT_FOUND = ErrorKind(grpc.StatusCode.NOT_FOUND, 404, "invalid_request_error", "model_not_found")
GONE = ErrorKind(grpc.StatusCode.FAILED_PRECONDITION, 410, "invalid_request_error", "model_retired")
RATE_LIMITED = ErrorKind(
    grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "rate_limit_error", "rate_limit_exceeded"
)
QUOTA_EXCEEDED = ErrorKind(
    grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "insufficient_quota", "insufficient_quota"
)
UNAVAILABLE = ErrorKind(
    grpc.StatusCode.UNAVAILABLE, 503, "service_unavailable", "service_unavailable"
)
TIMEOUT = ErrorKind(grpc.StatusCode.DEADLINE_EXCEEDED, 504, "timeout", "timeout")
# A message or its metadata over a gRPC size limit: the transport says RESOURCE_EXHAUSTED,
# like a rate limit, but retrying cannot help; the caller must send less.
REQUEST_TOO_LARGE = ErrorKind(
    grpc.StatusCode.RESOURCE_EXHAUSTED, 413, "invalid_request_error", "request_too_large"
)
# The edge gave up waiting for the rest of a request body.
REQUEST_TIMEOUT = ErrorKind(
    grpc.StatusCode.DEADLINE_EXCEEDED, 408, "invalid_request_error", "request_timeout"
)
INTERNAL = ErrorKind(grpc.StatusCode.INTERNAL, 500, "server_error", "internal_error")
CANCELLED = ErrorKind(grpc.StatusCode.CANCELLED, 499, "cancelled", "cancelled")

# gRPC code -> kind, for statuses that arrive without our metadata.
_BY_GRPC_CODE = {
    k.grpc_code: k
    for k in (
        INVALID_REQUEST,
        UNAUTHENTICATED,
        PERMISSION_DENIED,
        NOT_FOUND,
        GONE,
        RATE_LIMITED,
        UNAVAILABLE,
        TIMEOUT,
        INTERNAL,
        CANCELLED,
    )
}
_BY_HTTP_AND_CODE = {
    (k.http_status, k.default_code): k
    for k in (
        INVALID_REQUEST,
        UNAUTHENTICATED,
        PERMISSION_DENIED,
        NOT_FOUND,
        GONE,
        RATE_LIMITED,
        QUOTA_EXCEEDED,
        UNAVAILABLE,
        TIMEOUT,
        INTERNAL,
        CANCELLED,
        REQUEST_TOO_LARGE,
        REQUEST_TIMEOUT,
    )
}


class MeshError(Exception):
    """An error with a clear message for the caller; `kind` decides every wire form."""

    kind: ErrorKind = INTERNAL

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        kind: ErrorKind | None = None,
    ) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind
        self.message = message
        self.code = code or self.kind.default_code
        self.param = param
        self.retry_after = retry_after
        # Extra response headers (x-ratelimit-*), sent as trailing metadata.
        self.headers = dict(headers or {})

    @property
    def http_status(self) -> int:
        return self.kind.http_status

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        md = [(MD_ERROR_CODE, self.code), (MD_HTTP_STATUS, str(self.kind.http_status))]
        if self.param:
            md.append((MD_ERROR_PARAM, self.param))
        if self.retry_after is not None:
            md.append((MD_RETRY_AFTER, _seconds(self.retry_after)))
        md.extend((k.lower(), v) for k, v in self.headers.items())
        return tuple(md)

    def to_openai(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.kind.openai_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(MeshError):
    kind = INVALID_REQUEST


class ContextLengthExceeded(MeshError):
    kind = INVALID_REQUEST

    def __init__(self, message: str, *, param: str = "messages") -> None:
        super().__init__(message, code="context_length_exceeded", param=param)


class PromptRejected(MeshError):
    kind = INVALID_REQUEST

    def __init__(self, message: str) -> None:
        super().__init__(message, code="prompt_rejected", param="messages")


class Unauthenticated(MeshError):
    kind = UNAUTHENTICATED


class PermissionDenied(MeshError):
    kind = PERMISSION_DENIED


class NotFound(MeshError):
    kind = NOT_FOUND


class ModelRetired(MeshError):
    kind = GONE


class RateLimited(MeshError):
    kind = RATE_LIMITED


class QuotaExceeded(MeshError):
    kind = QUOTA_EXCEEDED


class Unavailable(MeshError):
    kind = UNAVAILABLE


class Timeout(MeshError):
    kind = TIMEOUT


class RequestTooLarge(MeshError):
    kind = REQUEST_TOO_LARGE


class RequestTimeout(MeshError):
    kind = REQUEST_TIMEOUT


# Exceptions raised below the wire layer (the worker's engine never imports this module) ->
# the kind the caller gets, looked up along the exception's MRO. A component registers its
# own (worker/errors.py); the server's error interceptor (mesh.rpc) maps them like MeshError.
KIND_BY_ERROR: dict[type[BaseException], ErrorKind] = {}


def register_kinds(table: Mapping[type[BaseException], ErrorKind]) -> None:
    KIND_BY_ERROR.update(table)


def as_mesh_error(exc: BaseException) -> MeshError | None:
    """`exc` as the MeshError its caller gets: itself, or a registered exception with its
    message and its `code` / `param` attributes when it has them; None when unknown."""
    if isinstance(exc, MeshError):
        return exc
    kind = next((KIND_BY_ERROR[c] for c in type(exc).__mro__ if c in KIND_BY_ERROR), None)
    if kind is None:
        return None
    code, param = getattr(exc, "code", None), getattr(exc, "param", None)
    return MeshError(
        str(exc),
        kind=kind,
        code=code if isinstance(code, str) else None,
        param=param if isinstance(param, str) else None,
    )


def _seconds(value: float) -> str:
    # Retry-After is whole seconds (RFC 9110); never 0 for a real wait.
    return str(max(1, int(value + 0.999)))


def _metadata_dict(md) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in md or ():
        key, value = item if isinstance(item, tuple) else (item.key, item.value)
        if isinstance(value, bytes):
            continue
        out[key.lower()] = value
    return out


def from_rpc_error(err: grpc.RpcError) -> MeshError:
    """Rebuild the MeshError a peer raised, from its status and trailing metadata."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or str(err)
    md = _metadata_dict(err.trailing_metadata() if hasattr(err, "trailing_metadata") else ())
    error_code = md.pop(MD_ERROR_CODE, None)
    param = md.pop(MD_ERROR_PARAM, None)
    http = md.pop(MD_HTTP_STATUS, None)
    retry = md.pop(MD_RETRY_AFTER, None)
    kind = None
    if http and error_code:
        kind = _BY_HTTP_AND_CODE.get((int(http), error_code))
    if kind is None and http:
        kind = next((k for k in _BY_HTTP_AND_CODE.values() if str(k.http_status) == http), None)
    if kind is None and code == grpc.StatusCode.RESOURCE_EXHAUSTED and not error_code:
        # Every rate or quota refusal carries our error code; a bare RESOURCE_EXHAUSTED is
        # gRPC's own "message / metadata larger than max": a size problem, never a rate limit.
        kind = REQUEST_TOO_LARGE
        details = (
            "The request (or its answer) is too large for the mesh's transport limits; send a "
            f"smaller request, shorter parameters or fewer inputs. ({details[:200]})"
        )
    if kind is None:
        kind = _BY_GRPC_CODE.get(code, INTERNAL)
    if code == grpc.StatusCode.UNAVAILABLE and not error_code:
        details = f"upstream unavailable: {details}"
    headers = {k: v for k, v in md.items() if k.startswith(MD_COPIED_PREFIXES)}
    return MeshError(
        details,
        kind=kind,
        code=error_code,
        param=param,
        retry_after=float(retry) if retry else None,
        headers=headers,
    )
