"""End to end with LLMAAS_TLS=1: the real mesh (filter, worker, router, edge) over HTTPS with
TLS 1.3 only at the edge and mTLS (mesh CA + role check) between components; content logging
encrypted at rest and the audit trail verified, exported, through the admin CLI."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.pb import (
    admin_pb2,
    admin_pb2_grpc,
    filter_pb2,
    filter_pb2_grpc,
    worker_pb2,
    worker_pb2_grpc,
)
from tools.ops.certs import ensure_dev_pki
from tools.run_mesh import MeshHandle, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

MODEL = "smollm2:135m"
ADMIN_KEY = "sk-llmaas-admin-e2e-secure-0123456789"
MARKER = "TANGERINE-55813"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> MeshHandle:
    env = {**os.environ, "LLMAAS_TLS": "1", "LLMAAS_ADMIN_KEY": ADMIN_KEY}
    for name in ("LLMAAS_TLS_DIR", "LLMAAS_EDGE_CERT", "LLMAAS_EDGE_KEY", "LLMAAS_EDGE_TLS"):
        env.pop(name, None)
    handle = start_mesh(
        env, workers=1, run_dir=tmp_path_factory.mktemp("secure"), ready_timeout_s=300
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def client(mesh) -> openai.OpenAI:
    http = httpx.Client(verify=str(mesh.ca), timeout=120)
    return openai.OpenAI(
        base_url=f"{mesh.url}/v1", api_key=mesh.api_key, max_retries=0, http_client=http
    )


def _admin(mesh: MeshHandle, *argv: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "LLMAAS_TLS": "1",
        "LLMAAS_TLS_DIR": str(mesh.ca.parent),
        "LLMAAS_ROUTER_ADDR": mesh.router_address,
        "LLMAAS_ADMIN_KEY": ADMIN_KEY,
    }
    env.pop("LLMAAS_TLS_ROLE", None)  # the CLI presents the admin certificate by default
    return subprocess.run(
        [sys.executable, "-m", "tools.admin", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )


def _content_rows(db: Path, request_id: str) -> int:
    """Rows logged for a request; the router writes them just after the answer went out."""
    deadline = time.monotonic() + 10
    while True:
        if db.exists():
            conn = sqlite3.connect(db)
            try:
                sql = "SELECT count(*) FROM content_log WHERE request_id = ?"
                found = conn.execute(sql, (request_id,)).fetchone()[0]
            finally:
                conn.close()
            if found or time.monotonic() > deadline:
                return found
        elif time.monotonic() > deadline:
            return 0
        time.sleep(0.2)


def _s_client(mesh: MeshHandle, version: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{mesh.ports.http}",
            version,
            "-CAfile",
            str(mesh.ca),
            "-verify_return_error",
            "-brief",
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_edge_speaks_tls13_only(mesh) -> None:
    assert mesh.url.startswith("https://")
    old = _s_client(mesh, "-tls1_2")
    assert old.returncode != 0, old.stdout + old.stderr
    new = _s_client(mesh, "-tls1_3")
    assert new.returncode == 0, new.stdout + new.stderr
    assert "TLSv1.3" in new.stdout + new.stderr
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the HTTPS port gets nothing
        httpx.get(f"http://127.0.0.1:{mesh.ports.http}/health", timeout=5)
    assert httpx.get(f"{mesh.url}/health", verify=str(mesh.ca), timeout=5).status_code == 200


def test_openai_sdk_over_https_end_to_end(client) -> None:
    reply = client.chat.completions.create(
        model=MODEL,
        max_tokens=12,
        temperature=0,
        messages=[{"role": "user", "content": "What is the capital of France?"}],
    )
    assert reply.choices[0].message.content and reply.usage.completion_tokens >= 1


def _channel(
    mesh: MeshHandle, address: str, peer: str, role: str | None, ca_dir: Path | None = None
):
    """A gRPC client: plain (role None), or presenting `role`'s certificate from `ca_dir`."""
    if role is None:
        return grpc.insecure_channel(address)
    certs = ca_dir or mesh.ca.parent
    creds = grpc.ssl_channel_credentials(
        root_certificates=mesh.ca.read_bytes(),
        private_key=(certs / f"{role}-key.pem").read_bytes(),
        certificate_chain=(certs / f"{role}.pem").read_bytes(),
    )
    return grpc.secure_channel(
        address, creds, options=[("grpc.ssl_target_name_override", f"{peer}.llmaas.mesh")]
    )


def _health(channel) -> grpc.StatusCode:
    try:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.RpcError as err:
        return err.code()
    return grpc.StatusCode.OK


def test_mesh_refuses_plain_and_foreign_clients(mesh, tmp_path) -> None:
    rogue = ensure_dev_pki(tmp_path / "rogue", roles=("router",))  # same role name, another CA
    peers = {
        "router": mesh.router_address,
        "filter": f"127.0.0.1:{mesh.ports.filter}",
        "worker": mesh.worker_addresses[0],
    }
    for peer, address in peers.items():
        with _channel(mesh, address, peer, None) as plain:
            assert _health(plain) == grpc.StatusCode.UNAVAILABLE, peer
        with _channel(mesh, address, peer, "router", ca_dir=rogue) as foreign:
            assert _health(foreign) == grpc.StatusCode.UNAVAILABLE, peer
        with _channel(mesh, address, peer, "router" if peer != "router" else "edge") as member:
            assert _health(member) == grpc.StatusCode.OK, peer  # a mesh certificate connects


def test_mesh_checks_the_callers_role(mesh) -> None:
    def code(call) -> grpc.StatusCode:
        try:
            call()
        except grpc.RpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    denied = grpc.StatusCode.PERMISSION_DENIED
    with _channel(mesh, f"127.0.0.1:{mesh.ports.filter}", "filter", "edge") as ch:
        stub = filter_pb2_grpc.SecurityFilterStub(ch)
        assert code(lambda: stub.Check(filter_pb2.CheckRequest(prompt="hi"), timeout=5)) == denied
    with _channel(mesh, mesh.worker_addresses[0], "worker", "client") as ch:
        stub = worker_pb2_grpc.WorkerStub(ch)
        assert code(lambda: stub.Info(worker_pb2.InfoRequest(), timeout=5)) == denied
    with _channel(mesh, mesh.router_address, "router", "edge") as ch:
        stub = admin_pb2_grpc.AdminStub(ch)
        md = (("authorization", f"Bearer {ADMIN_KEY}"),)
        assert (
            code(lambda: stub.ListTenants(admin_pb2.ListTenantsRequest(), metadata=md, timeout=5))
            == denied
        )


def test_embedding_worker_serves_the_router_role_only(mesh, client) -> None:
    """Issue #14 point 10: any mesh certificate could call the embedding worker's Embed."""
    assert mesh.ports.embed is not None
    address = f"127.0.0.1:{mesh.ports.embed}"
    request = worker_pb2.EmbedRequest(model="all-minilm:22m", inputs=["hello"])
    for role in ("edge", "client", "admin"):
        with _channel(mesh, address, "worker", role) as ch:
            with pytest.raises(grpc.RpcError) as err:
                worker_pb2_grpc.WorkerStub(ch).Embed(request, timeout=10)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, role
    # Through the router (the allowed caller) the same input is embedded.
    reply = client.embeddings.create(model="all-minilm:22m", input="hello")
    assert len(reply.data[0].embedding) == 384


def test_content_logging_is_encrypted_and_the_audit_trail_verifies(mesh, client) -> None:
    done = _admin(
        mesh, "tenant", "set", "dev", "--content-logging", "on", "--retention-days", "30", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["content_logging"] is True
    # The day is read before the request: a run that crosses midnight UTC between the two
    # would otherwise ask for a day after the one the request was audited on.
    today = dt.datetime.now(dt.UTC).date().isoformat()
    reply = client.chat.completions.with_raw_response.create(
        model=MODEL,
        max_tokens=8,
        temperature=0,
        messages=[{"role": "user", "content": f"Repeat after me: {MARKER}"}],
    )
    request_id = reply.headers["x-request-id"]
    assert _content_rows(mesh.run_dir / "content.sqlite3", request_id) == 1  # it was logged
    for path in mesh.run_dir.glob("*.sqlite3*"):
        assert MARKER.encode() not in path.read_bytes(), path

    verify = _admin(mesh, "audit", "verify")
    assert verify.returncode == 0 and "audit chain ok" in verify.stdout, verify.stderr
    export = _admin(mesh, "audit", "export", "--tenant", "dev", "--since", today, "--format", "csv")
    assert export.returncode == 0, export.stderr
    assert export.stdout.startswith("seq,time,request_id") and request_id in export.stdout
