"""Transport security: mTLS inside the mesh, HTTPS (TLS 1.3 only) at the edge.

Mesh (gRPC), off unless `LLMAAS_TLS=1`:
  - files in `LLMAAS_TLS_DIR` (default `<run_dir>/tls`): `ca.pem`, `<role>.pem`, `<role>-key.pem`
    (`python -m tools.certs init` makes a dev set);
  - servers present `<role>.pem` and require a client certificate from the mesh CA;
    `PeerRoleInterceptor` then checks the caller's role (URI SAN `spiffe://llmaas/<role>`)
    against `ALLOWED_CALLERS`;
  - clients present the certificate of `client_role()` (`LLMAAS_TLS_ROLE`, default "client")
    and verify that the server's certificate names the role they meant to dial (DNS SAN
    `<role>.llmaas.mesh`, via `ssl_target_name_override`), so one mesh certificate cannot
    pose as another component.
  When TLS is off every function here returns None / [] / {} and the mesh stays plain.

Edge (HTTP), `LLMAAS_EDGE_TLS` = auto (default) | on | off:
  - certificate from `LLMAAS_EDGE_CERT` + `LLMAAS_EDGE_KEY`, else `<tls dir>/edge.pem` when
    `LLMAAS_TLS=1`; served with TLS 1.3 as the minimum (1.2 and older are refused);
  - plain HTTP only when chosen: `off` explicitly, or `auto` with no certificate configured
    and a loopback bind (local development); `auto` refuses plain on any other address.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import ssl
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import grpc

from mesh.config import ConfigError, env, run_dir
from mesh.interceptor import guard_handler

log = logging.getLogger(__name__)

SPIFFE_PREFIX = "spiffe://llmaas/"
DNS_SUFFIX = ".llmaas.mesh"
DEFAULT_CLIENT_ROLE = "client"

# Who may call whom: the default callers of each server role, then narrower rules for some
# services (matched by method prefix). Health checks are open to any mesh certificate.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {
    "router": frozenset({"edge", "admin", "client"}),
    "filter": frozenset({"router"}),
    "worker": frozenset({"router"}),
}
METHOD_CALLERS: dict[str, dict[str, frozenset[str]]] = {
    "router": {
        "/llmaas.v1.Admin/": frozenset({"admin"}),  # tenants and keys: the admin tool only
        "/llmaas.v1.Registry/": frozenset({"worker", "admin"}),  # workers announce themselves
    },
}
# Liveness probes (launcher, edge /health, orchestrator) still need a valid mesh certificate:
# only the role check is skipped, never the CA check done by the TLS handshake.
OPEN_METHODS = ("/grpc.health.v1.Health/",)


# ---------------------------------------------------------------- configuration


def enabled(environ: dict[str, str] | None = None) -> bool:
    return env("LLMAAS_TLS", bool, False, environ)


def tls_dir(environ: dict[str, str] | None = None) -> Path:
    default = str(run_dir(environ) / "tls")
    return Path(env("LLMAAS_TLS_DIR", str, default, environ)).resolve()


def client_role(environ: dict[str, str] | None = None) -> str:
    """The certificate this process presents when it dials a peer (set per process)."""
    return env("LLMAAS_TLS_ROLE", str, DEFAULT_CLIENT_ROLE, environ)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"LLMAAS_TLS=1 but {path} is missing (run `python -m tools.certs init`)"
        ) from exc


def _identity(role: str, environ: dict[str, str] | None) -> tuple[bytes, bytes, bytes]:
    """(ca, key, cert) PEM bytes for a role."""
    base = tls_dir(environ)
    return _read(base / "ca.pem"), _read(base / f"{role}-key.pem"), _read(base / f"{role}.pem")


# ---------------------------------------------------------------- gRPC credentials


def server_credentials(
    role: str, environ: dict[str, str] | None = None
) -> grpc.ServerCredentials | None:
    """mTLS server credentials for `role`, or None when the mesh runs plain."""
    if not enabled(environ):
        return None
    ca, key, cert = _identity(role, environ)
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


def channel_credentials(
    peer_role: str, environ: dict[str, str] | None = None
) -> grpc.ChannelCredentials | None:
    """Client credentials (this process's `client_role()` certificate), or None when plain."""
    if not enabled(environ):
        return None
    ca, key, cert = _identity(client_role(environ), environ)
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def channel_options(peer_role: str, environ: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Checks the server's certificate against the role we dial, not only the address."""
    if not enabled(environ):
        return []
    return [("grpc.ssl_target_name_override", f"{peer_role}{DNS_SUFFIX}")]


def server_interceptors(
    role: str, environ: dict[str, str] | None = None
) -> list[grpc.aio.ServerInterceptor]:
    """The role check for a server of `role`. Plain, there is no peer identity: nothing, or
    the mesh token on every method when plain gRPC is allowed off loopback (mesh.meshtoken)."""
    if not enabled(environ):
        from mesh import meshtoken  # noqa: PLC0415 - meshtoken imports this module

        return meshtoken.component_interceptors(role, environ)
    return [PeerRoleInterceptor(ALLOWED_CALLERS[role], method_rules=METHOD_CALLERS.get(role, {}))]


# ---------------------------------------------------------------- peer role check


def peer_roles(auth_context: dict[str, Iterable[bytes]]) -> set[str]:
    """Roles named by the verified peer certificate's URI SANs (`spiffe://llmaas/<role>`)."""
    if b"ssl" not in set(auth_context.get("transport_security_type", ())):
        return set()
    roles: set[str] = set()
    for raw in auth_context.get("x509_subject_alternative_name", ()):
        value = raw.decode("utf-8", "replace")
        if value.startswith(SPIFFE_PREFIX):
            roles.add(value.removeprefix(SPIFFE_PREFIX))
    return roles


def _denial(context: Any, allowed: frozenset[str]) -> tuple[grpc.StatusCode, str] | None:
    roles = peer_roles(context.auth_context())
    if not roles:
        return grpc.StatusCode.UNAUTHENTICATED, "a mesh client certificate is required"
    if roles.isdisjoint(allowed):
        return (
            grpc.StatusCode.PERMISSION_DENIED,
            f"role {'/'.join(sorted(roles))} may not call this service",
        )
    return None


class PeerRoleInterceptor(grpc.aio.ServerInterceptor):
    """Refuses callers whose certificate role is not in `allowed_roles`.

    The handshake already proved the certificate comes from the mesh CA; this decides which
    components may call this one. The check runs inside the handler because the peer's
    identity (auth_context) is only available on the call's context.
    """

    def __init__(
        self,
        allowed_roles: Iterable[str],
        open_methods: Iterable[str] = OPEN_METHODS,
        method_rules: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.allowed = frozenset(allowed_roles)
        self.open_methods = tuple(open_methods)
        # Longest prefix first, so a rule for one method beats one for its whole service.
        rules = [(prefix, frozenset(roles)) for prefix, roles in (method_rules or {}).items()]
        self.rules = sorted(rules, key=lambda rule: -len(rule[0]))

    def allowed_for(self, method: str) -> frozenset[str]:
        return next(
            (roles for prefix, roles in self.rules if method.startswith(prefix)), self.allowed
        )

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(self.open_methods):
            return handler
        allowed = self.allowed_for(method)
        return guard_handler(handler, lambda ctx: _denial(ctx, allowed))


# ---------------------------------------------------------------- edge HTTPS


def is_loopback(host: str) -> bool:
    """True for localhost and loopback IPs; any other name or address is treated as public."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------- gRPC binds


def allow_plain(environ: dict[str, str] | None = None) -> bool:
    """LLMAAS_MESH_ALLOW_PLAIN=1: plain gRPC on a non-loopback address (a private network)."""
    return env("LLMAAS_MESH_ALLOW_PLAIN", bool, False, environ)


def check_grpc_bind(host: str, role: str, environ: dict[str, str] | None = None) -> None:
    """Refuses a plain (no mTLS) gRPC server on a non-loopback address, like the edge does.

    With mTLS on, any address is fine (the CA and role checks authenticate callers). Plain on
    loopback is local development: allowed, with a warning when the control plane has no
    shared token. Plain elsewhere needs both LLMAAS_MESH_ALLOW_PLAIN=1 and LLMAAS_MESH_TOKEN.
    """
    if enabled(environ):
        return
    token = env("LLMAAS_MESH_TOKEN", str, "", environ)
    if is_loopback(host):
        if not token:
            log.warning(
                "%s: plain gRPC on %s without LLMAAS_MESH_TOKEN: the control plane is "
                "unauthenticated, any local process may register as a worker (local "
                "development only)",
                role,
                host,
            )
        return
    if not allow_plain(environ):
        raise ConfigError(
            f"{role} on {host or '*'}: refusing plain gRPC on a non-loopback address. Turn on "
            "mesh mTLS (LLMAAS_TLS=1; `python -m tools.certs init` makes a dev CA), or bind "
            "127.0.0.1, or on a private network set LLMAAS_MESH_ALLOW_PLAIN=1 together with "
            "a shared LLMAAS_MESH_TOKEN"
        )
    if not token:
        raise ConfigError(
            f"{role} on {host or '*'}: LLMAAS_MESH_ALLOW_PLAIN=1 needs LLMAAS_MESH_TOKEN (the "
            "same secret in every mesh process) so the control plane is authenticated"
        )
    log.warning(
        "%s: plain gRPC on %s (LLMAAS_MESH_ALLOW_PLAIN=1): traffic is not encrypted", role, host
    )


def edge_cert_files(
    host: str = "127.0.0.1", environ: dict[str, str] | None = None
) -> tuple[Path, Path] | None:
    """(certificate, key) for the edge's HTTPS, or None for plain HTTP (see module doc)."""
    mode = env("LLMAAS_EDGE_TLS", str, "auto", environ).lower()
    if mode not in ("auto", "on", "off"):
        raise ConfigError(f"LLMAAS_EDGE_TLS={mode!r} is not valid: expected auto, on or off")
    if mode == "off":
        log.warning("edge serves plain HTTP (LLMAAS_EDGE_TLS=off): local development only")
        return None
    cert, key = env("LLMAAS_EDGE_CERT", str, "", environ), env("LLMAAS_EDGE_KEY", str, "", environ)
    if cert or key:
        if not (cert and key):
            raise ConfigError("LLMAAS_EDGE_CERT and LLMAAS_EDGE_KEY must be set together")
        return _existing(Path(cert)), _existing(Path(key))
    if enabled(environ):
        base = tls_dir(environ)
        return _existing(base / "edge.pem"), _existing(base / "edge-key.pem")
    if mode == "auto" and is_loopback(host):
        log.warning("edge serves plain HTTP on loopback %s (no certificate configured)", host)
        return None
    raise ConfigError(
        f"edge on {host}: set LLMAAS_EDGE_CERT/LLMAAS_EDGE_KEY (or LLMAAS_TLS=1), "
        "or choose plain HTTP explicitly with LLMAAS_EDGE_TLS=off"
    )


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(f"edge TLS file {path} not found")
    return path.resolve()


def tls13_context_factory(
    config: Any, default_factory: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    """uvicorn's `ssl_context_factory`: its usual context (cert, ALPN) with TLS 1.3 as the floor.

    uvicorn's `ssl_version` picks a protocol constant, which cannot express a minimum.
    """
    ctx = default_factory()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def edge_ssl_kwargs(
    host: str = "127.0.0.1", environ: dict[str, str] | None = None
) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.Config`/`uvicorn.run`: {} for plain HTTP."""
    files = edge_cert_files(host, environ)
    if files is None:
        return {}
    cert, key = files
    return {
        "ssl_certfile": str(cert),
        "ssl_keyfile": str(key),
        "ssl_context_factory": tls13_context_factory,
    }


def uvicorn_config(app: Any, host: str, port: int, **kwargs: Any):
    """A `uvicorn.Config` for the edge, with HTTPS (TLS 1.3) when configured."""
    import uvicorn  # noqa: PLC0415 - only the edge needs uvicorn

    return uvicorn.Config(app, host=host, port=port, **edge_ssl_kwargs(host), **kwargs)


def run_uvicorn(app: Any, host: str, port: int, **kwargs: Any) -> None:
    """Serves `app` until SIGINT/SIGTERM (blocking). Extra kwargs go to uvicorn.Config."""
    import uvicorn  # noqa: PLC0415

    uvicorn.Server(uvicorn_config(app, host, port, **kwargs)).run()


def tls_summary(environ: dict[str, str] | None = None) -> str:
    """One line for startup logs."""
    if not enabled(environ):
        return "mesh TLS off (plain gRPC)"
    return f"mesh mTLS on: dir={tls_dir(environ)} role={client_role(environ)} pid={os.getpid()}"
