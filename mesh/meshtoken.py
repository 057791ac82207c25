"""A shared mesh token: authenticates the control plane when the mesh runs without mTLS.

`LLMAAS_MESH_TOKEN` (the launcher makes one and gives it to every child) is sent by every
channel from `mesh.rpc.open_channel` as the `x-llmaas-mesh-token` metadata. Servers built by
`mesh.rpc.build_server` check it, in constant time, on the control-plane methods
(`CONTROL_PLANE_METHODS`: workers announcing and withdrawing themselves), so a process that
does not hold the token cannot register as a worker and receive tenants' prompts.

Under mTLS (`LLMAAS_TLS=1`) the certificate role check (`mesh.tls`) is the authority and this
check is not installed. Plain with no token is allowed on loopback only (local development;
`mesh.tls.check_grpc_bind` warns), and refused on any other address.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable

import grpc

from mesh import tls
from mesh.config import env
from mesh.interceptor import guard_handler
from mesh.wire import MD_MESH_TOKEN

log = logging.getLogger(__name__)

TOKEN_ENV = "LLMAAS_MESH_TOKEN"
METADATA_KEY = MD_MESH_TOKEN
# Methods that change who receives traffic. Inference (tenant keys) and Admin (admin key)
# authenticate their callers themselves; health and reflection stay open.
CONTROL_PLANE_METHODS: tuple[str, ...] = ("/llmaas.v1.Registry/",)


def mesh_token(environ: dict[str, str] | None = None) -> str:
    """The shared token, or "" when unset."""
    return env(TOKEN_ENV, str, "", environ)


def token_matches(presented: str | bytes | None, expected: str) -> bool:
    """Constant-time comparison; an empty expected token never matches."""
    if not expected or presented is None:
        return False
    if isinstance(presented, str):
        presented = presented.encode("utf-8", "replace")
    return hmac.compare_digest(presented, expected.encode())


# ---------------------------------------------------------------- client side


def _with_token(details: grpc.aio.ClientCallDetails, token: str) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    metadata[METADATA_KEY] = token
    return grpc.aio.ClientCallDetails(
        details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
    )


class _UnaryUnary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        return await continuation(_with_token(client_call_details, self.token), request)


class _UnaryStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_unary_stream(self, continuation, client_call_details, request):
        return await continuation(_with_token(client_call_details, self.token), request)


class _StreamUnary(grpc.aio.StreamUnaryClientInterceptor):
    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_stream_unary(self, continuation, client_call_details, request_iterator):
        return await continuation(_with_token(client_call_details, self.token), request_iterator)


class _StreamStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self.token = token

    async def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        return await continuation(_with_token(client_call_details, self.token), request_iterator)


def client_interceptors(
    environ: dict[str, str] | None = None,
) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that attach the token to every call; none when the token is unset."""
    token = mesh_token(environ)
    if not token:
        return []
    return [_UnaryUnary(token), _UnaryStream(token), _StreamUnary(token), _StreamStream(token)]


# ---------------------------------------------------------------- server side


class MeshTokenInterceptor(grpc.aio.ServerInterceptor):
    """Answers UNAUTHENTICATED on protected methods unless the caller sent the mesh token.

    With no token configured (plain mode on loopback) every caller is let through: the bind
    check has already warned, and one process cannot invent a token the others would share.
    """

    def __init__(
        self,
        token: str,
        protected: Iterable[str] = CONTROL_PLANE_METHODS,
        open_methods: Iterable[str] = tls.OPEN_METHODS,
    ) -> None:
        self.token = token
        self.protected = tuple(protected)
        self.open_methods = tuple(open_methods)
        self.refused = 0

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if (
            handler is None
            or not self.token
            or not method.startswith(self.protected)
            or method.startswith(self.open_methods)
        ):
            return handler
        presented = next(
            (v for k, v in handler_call_details.invocation_metadata or () if k == METADATA_KEY),
            None,
        )
        if token_matches(presented, self.token):
            return handler
        self.refused += 1
        if self.refused in (1, 10) or self.refused % 1000 == 0:  # a flood cannot fill the log
            log.warning(
                "refused %s: missing or wrong mesh token (%d refusals so far)",
                method,
                self.refused,
            )
        message = (
            f"{method} is part of the mesh control plane: it needs the shared mesh token "
            f"({TOKEN_ENV}, sent as {METADATA_KEY} metadata); it was missing or wrong"
        )
        return guard_handler(handler, lambda _ctx: (grpc.StatusCode.UNAUTHENTICATED, message))


def server_interceptors(environ: dict[str, str] | None = None) -> list[grpc.aio.ServerInterceptor]:
    """The control-plane token check of `mesh.rpc.build_server`; none under mTLS, where the
    role check decides."""
    if tls.enabled(environ):
        return []
    return [MeshTokenInterceptor(mesh_token(environ))]


def component_interceptors(
    role: str, environ: dict[str, str] | None = None
) -> list[grpc.aio.ServerInterceptor]:
    """Plain gRPC reachable from a network (LLMAAS_MESH_ALLOW_PLAIN=1): a worker or filter
    answers only callers holding the token (the router's channels send it), as under mTLS
    it answers only the router's certificate. Health stays open. On loopback: nothing."""
    token = mesh_token(environ)
    if tls.enabled(environ) or role == "router" or not (tls.allow_plain(environ) and token):
        return []
    return [MeshTokenInterceptor(token, protected=("/",))]
