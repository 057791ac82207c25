"""`python -m tools.ops.probe --port 50051`: the gRPC health check of a mesh component, for
container probes (exit 0 when SERVING, 1 otherwise, one line on stderr saying why).

Kubernetes' built-in `grpc:` probes cannot present a client certificate, and under mTLS
(LLMAAS_TLS=1) every mesh server requires one; this check dials like a mesh peer would: with
the pod's own certificate (LLMAAS_TLS_ROLE) and verifying the server's role (`--role`,
default the pod's own). Plain mesh (no LLMAAS_TLS): a plain channel, same answer.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh import tls

SERVING = health_pb2.HealthCheckResponse.SERVING


def health_status(
    address: str, peer_role: str, environ: Mapping[str, str], service: str = "", timeout_s=2.0
) -> str:
    """The server's status name for `service` ("SERVING", "NOT_SERVING"...), or
    "unreachable (<code>)"."""
    env = dict(environ)
    creds = tls.channel_credentials(peer_role, env)
    channel = (
        grpc.secure_channel(address, creds, options=tls.channel_options(peer_role, env))
        if creds
        else grpc.insecure_channel(address)
    )
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s
            )
        except grpc.RpcError as err:
            return f"unreachable ({err.code().name})"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ops.probe", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="the component's gRPC port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--role", default=tls.client_role(), help="the server's role")
    parser.add_argument("--service", default="", help="health service name (default: server)")
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args(argv)
    status = health_status(
        f"{args.host}:{args.port}", args.role, os.environ, args.service, args.timeout
    )
    if status == "SERVING":
        return 0
    print(f"{args.role} at {args.host}:{args.port}: {status}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
