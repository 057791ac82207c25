"""llmaas-admin: tenants, keys, usage and audit against a running router; `migrate`
moves an embedded SQLite store into PostgreSQL (tools/ops/admin/migrate.py).

Routers from --addr or LLMAAS_ROUTER_ADDRS (a comma list; the first that accepts a connection
is used), else LLMAAS_ROUTER_ADDR, else 127.0.0.1:$LLMAAS_ROUTER_PORT (or 50051);
authenticates with LLMAAS_ADMIN_KEY (a tenant's own key works for its read-only commands).
Every command takes --json. Errors print one line on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

import grpc

from mesh import tls
from mesh.config import ConfigError, parse_addresses, router_addresses, run_dir
from mesh.errors import MD_ERROR_CODE, from_rpc_error
from mesh.pb import admin_pb2_grpc
from mesh.rpc import message_limit_options
from tools.ops.admin.commands import CliError, VerifyFailed, run
from tools.ops.admin.parser import PROG, build_parser

# How long the CLI waits for each router of a list to accept a connection before the next.
CONNECT_TIMEOUT_S = 2.0


def _address(a: argparse.Namespace) -> str:
    if a.addr:
        routers = parse_addresses(a.addr, "--addr")
    else:
        port = os.environ.get("LLMAAS_ROUTER_PORT") or "50051"
        routers = router_addresses(legacy=("LLMAAS_ROUTER_ADDR",), default=f"127.0.0.1:{port}")
    if not routers:
        raise ConfigError("--addr names no router")
    if len(routers) > 1:  # only a connection is tried: nothing is sent twice
        for address in routers:
            with _channel(address) as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
                except grpc.FutureTimeoutError:
                    continue
                return address
    return routers[0]  # none answered: the call's own error names it


def _channel(address: str) -> grpc.Channel:
    # LLMAAS_TLS=1: the CLI presents the admin certificate (the router's Admin API accepts
    # only that role) unless LLMAAS_TLS_ROLE names another.
    environ = {**os.environ, "LLMAAS_TLS_ROLE": os.environ.get("LLMAAS_TLS_ROLE") or "admin"}
    creds = tls.channel_credentials("router", environ)
    limits = message_limit_options()  # the router's replies may use the mesh-wide limit
    if creds is None:
        return grpc.insecure_channel(address, options=limits)
    return grpc.secure_channel(
        address, creds, options=[*tls.channel_options("router", environ), *limits]
    )


class _Bearer(grpc.UnaryUnaryClientInterceptor):
    def __init__(self, key: str) -> None:
        self._md = (("authorization", f"Bearer {key}"),)

    def intercept_unary_unary(self, continuation, details, request):
        details = details._replace(metadata=tuple(details.metadata or ()) + self._md)
        return continuation(details, request)


def _default_admin_key() -> str:
    """The admin key `make run` made for the embedded default (.run/secrets/admin-key)."""
    path = run_dir() / "secrets" / "admin-key"
    return path.read_text().strip() if path.exists() else ""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.group == "migrate":  # works on the databases themselves, not through a router
        return _migrate(args)
    key = args.key or os.environ.get("LLMAAS_ADMIN_KEY", "") or _default_admin_key()
    try:
        address = _address(args)
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    if not key:
        print(f"{PROG}: error: no API key: set LLMAAS_ADMIN_KEY (or pass --key)", file=sys.stderr)
        return 2
    with _channel(address) as channel:
        stub = admin_pb2_grpc.AdminStub(grpc.intercept_channel(channel, _Bearer(key)))
        try:
            value, text = run(stub, args)
        except grpc.RpcError as err:
            return _fail(_rpc_message(err, address))
        except VerifyFailed as err:
            print(str(err))
            return 1
        except CliError as err:
            return _fail(str(err))
    print(json.dumps(value, indent=2, default=str) if args.json else text)
    return 0


def _migrate(a: argparse.Namespace) -> int:
    # Imported here: the router commands need no database driver.
    from tools.ops.admin.migrate import MigrateError, migrate  # noqa: PLC0415

    try:
        print(migrate(a.source, a.content_from, a.to))
    except (MigrateError, ConfigError) as err:
        return _fail(str(err))
    return 0


def _rpc_message(err: grpc.RpcError, address: str) -> str:
    if (
        err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        and not err.trailing_metadata()
    ):
        return f"cannot reach the router at {address}: {err.details()}"
    codes = {k for k, _v in err.trailing_metadata() or ()}
    if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and MD_ERROR_CODE not in codes:
        # gRPC's own limit (a message too large), not the router's rate limiter.
        return f"transport limit: {err.details()} (message_too_large)"
    mesh_err = from_rpc_error(err)
    return f"{mesh_err.message} ({mesh_err.code})"


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
