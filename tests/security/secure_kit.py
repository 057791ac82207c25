"""An in-process router for the security tests: real Accounts (SQLite), content log, Admin
and Inference services, and one fake worker that answers with a fixed text."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

import grpc

from mesh.catalog import Catalog
from mesh.crypto import Keyring, Sealer
from mesh.pb import common_pb2, inference_pb2, inference_pb2_grpc, worker_pb2, worker_pb2_grpc
from mesh.router import admin_service
from mesh.router.accounts import Accounts, Bootstrap
from mesh.router.config import RouterConfig
from mesh.router.content import ContentRecorder
from mesh.router.keys import KeyHasher
from mesh.router.service import InferenceServicer
from mesh.router.store import SqliteStore, Store
from mesh.router.tenants import Tenant
from mesh.router.workers import WorkerPool
from mesh.rpc import add_port, build_server, set_serving

ADMIN_KEY = "sk-admin-security-0123456789"
MODEL = "echo:1m"
ANSWER = ("The vault code ", "is ", "OCTARINE-4417.")
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
INFERENCE = "llmaas.v1.Inference"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class EchoWorker(worker_pb2_grpc.WorkerServicer):
    """Serves MODEL; remembers the tenant of every request (prefix-cache isolation key)."""

    def __init__(self) -> None:
        self.tenants: list[str] = []

    async def Info(self, request, context):
        return worker_pb2.InfoResponse(
            worker_id="w1", models=[common_pb2.ModelInfo(id=MODEL, kind="chat", served=True)]
        )

    async def Generate(self, request, context):
        self.tenants.append(request.tenant)
        for text in ANSWER:
            yield worker_pb2.GenerateResponse(text=text, num_tokens=1)
        usage = common_pb2.Usage(prompt_tokens=12, completion_tokens=len(ANSWER))
        yield worker_pb2.GenerateResponse(finish_reason=common_pb2.FINISH_REASON_STOP, usage=usage)


@dataclass
class Router:
    accounts: Accounts
    content: ContentRecorder
    worker: EchoWorker
    address: str
    channel: grpc.aio.Channel
    stub: inference_pb2_grpc.InferenceStub
    servers: list[grpc.aio.Server]
    pool: WorkerPool
    db: Path

    async def add_tenant(self, name: str, **policy) -> str:
        """Creates a tenant (filter off: no sidecar here) and returns a key for it."""
        tenant = Tenant(name=name, filter_enabled=False, created_at=self.accounts.now())
        await self.accounts.directory.save_tenant(replace(tenant, **policy))
        _key, secret = await self.accounts.directory.create_key(name, None, 0.0, False)
        return secret

    async def chat(self, key: str, prompt: str, request_id: str) -> str:
        request = inference_pb2.ChatCompletionRequest(
            model=MODEL, messages=[common_pb2.ChatMessage(role="user", content=prompt)]
        )
        md = (("authorization", f"Bearer {key}"), ("x-request-id", request_id))
        return "".join([c.text async for c in self.stub.ChatCompletion(request, metadata=md)])

    async def close(self) -> None:
        await self.channel.close()
        await self.pool.close()
        for server in self.servers:
            await server.stop(0)
        await self.accounts.close()
        self.content.close()


async def start_router(
    tmp_path: Path, clock: Clock | None = None, store: Store | None = None
) -> Router:
    """`store`: another store than the SQLite file (the PostgreSQL tests pass theirs)."""
    db = tmp_path / "accounts.sqlite3"
    accounts = Accounts(
        store or SqliteStore(db),
        KeyHasher(b"security-test-pepper-0123456789"),
        clock=clock or Clock(),
        rotation_check_s=3600,
        bootstrap=Bootstrap(admin_key=ADMIN_KEY),
    )
    await accounts.start()
    content = ContentRecorder(
        tmp_path / "content.sqlite3", lambda: Sealer(Keyring.create(tmp_path / "keys.json"))
    )
    worker = EchoWorker()
    worker_server, worker_health = build_server(["llmaas.v1.Worker"])
    worker_pb2_grpc.add_WorkerServicer_to_server(worker, worker_server)
    worker_port = add_port(worker_server, "127.0.0.1", 0, "worker")
    await worker_server.start()
    await set_serving(worker_health, ["llmaas.v1.Worker"], True)
    pool = WorkerPool([f"127.0.0.1:{worker_port}"], health_interval_s=0.1)
    await pool.start()
    (tmp_path / "catalog.csv").write_text("id,editor,phase,dmp\n")
    servicer = InferenceServicer(
        RouterConfig(filter_address="127.0.0.1:9", health_interval_s=0.1),
        pool,
        Catalog.load(tmp_path / "catalog.csv"),
        accounts,
        None,  # every test tenant has the filter off
        content_log=content,
    )
    server, health = build_server([INFERENCE, admin_service.SERVICE_NAME])
    inference_pb2_grpc.add_InferenceServicer_to_server(servicer, server)
    admin_service.add_to_server(accounts, server)
    port = add_port(server, "127.0.0.1", 0, "router")
    await server.start()
    await set_serving(health, [INFERENCE], True)
    for _ in range(100):
        if pool.is_served(MODEL):
            break
        await asyncio.sleep(0.05)
    address = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(address)
    return Router(
        accounts,
        content,
        worker,
        address,
        channel,
        inference_pb2_grpc.InferenceStub(channel),
        [server, worker_server],
        pool,
        db,
    )
