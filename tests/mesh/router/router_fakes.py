"""Fake workers, a fake filter and an in-process router on 127.0.0.1 free ports (router tests)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import grpc

from mesh.catalog import Catalog
from mesh.errors import RateLimited, Unavailable
from mesh.pb import (
    common_pb2,
    filter_pb2,
    filter_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    worker_pb2,
    worker_pb2_grpc,
)
from mesh.router.access import Admission, Principal, RequestRecord, StaticKeys
from mesh.router.config import RouterConfig
from mesh.router.service import InferenceServicer
from mesh.router.workers import WorkerPool
from mesh.rpc import add_port, build_server, set_serving

KEY = "sk-test"
CATALOG = """id,editor,phase,dmp,dsp,context_length,energy_kwh_per_mtok,kind,successor
chat:1m,Acme,production,2025-01-01,2030-01-01,2048,0.5,chat,
old:1m,Acme,production,2020-01-01,2021-01-01,2048,0.5,chat,chat:1m
soon:1m,Acme,production,2025-01-01,2026-02-01,2048,0.5,chat,chat:1m
big:70b,Acme,production,2025-01-01,2030-01-01,8192,11.75,chat,
emb:1m,Acme,production,2025-01-01,2030-01-01,512,0.1,embedding,
"""
TODAY = date(2026, 1, 1)


class FakeWorker(worker_pb2_grpc.WorkerServicer):
    def __init__(
        self, worker_id: str, models: tuple[str, ...], tokens: tuple[str, ...] = ("Hel", "lo", "!")
    ):
        self.worker_id, self.models, self.tokens = worker_id, models, tokens
        self.calls: list[worker_pb2.GenerateRequest] = []
        self.num_cancelled = 0
        self.fail_before_first: grpc.StatusCode | None = None
        self.fail_after_first = False
        self.delay_s = 0.0
        self.max_num_seqs = 0  # capacity said in Info (0: not said)
        self.context_length = 0  # window said in Info (0: not said)
        self.count_calls: list[worker_pb2.GenerateRequest] = []

    async def Info(self, request, context):
        kinds = {m: ("embedding" if m.startswith("emb") else "chat") for m in self.models}
        return worker_pb2.InfoResponse(
            worker_id=self.worker_id,
            models=[
                common_pb2.ModelInfo(id=m, kind=kinds[m], context_length=self.context_length)
                for m in self.models
            ],
            max_num_seqs=self.max_num_seqs,
        )

    async def CountTokens(self, request, context):
        """One token per word, plus 4 of template markup per chat message."""
        self.count_calls.append(request)
        if request.WhichOneof("input") == "prompt":
            num_prompt, num_system = len(request.prompt.split()), 0
        else:
            messages = request.chat.messages
            num_system = 4 * len(messages)
            num_prompt = sum(len(m.content.split()) for m in messages) + num_system
        return worker_pb2.CountTokensResponse(
            prompt_tokens=num_prompt,
            system_tokens=num_system,
            context_length=self.context_length or 2048,
        )

    async def Generate(self, request, context):
        self.calls.append(request)
        if self.fail_before_first is not None:
            await context.abort(self.fail_before_first, "fake failure")
        try:
            for i, text in enumerate(self.tokens):
                await asyncio.sleep(self.delay_s)
                if i == 1 and self.fail_after_first:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "fake crash")
                yield worker_pb2.GenerateResponse(text=text, num_tokens=1)
            usage = common_pb2.Usage(
                prompt_tokens=10, completion_tokens=len(self.tokens), system_tokens=4
            )
            yield worker_pb2.GenerateResponse(
                finish_reason=common_pb2.FINISH_REASON_STOP, usage=usage
            )
        except asyncio.CancelledError:
            self.num_cancelled += 1
            raise

    async def GetLoad(self, request, context):
        return worker_pb2.LoadReport(worker_id=self.worker_id, max_num_seqs=self.max_num_seqs)

    async def WatchLoad(self, request, context):
        yield worker_pb2.LoadReport(worker_id=self.worker_id, max_num_seqs=self.max_num_seqs)
        await asyncio.Event().wait()  # load never changes

    async def Embed(self, request, context):
        return worker_pb2.EmbedResponse(
            embeddings=[worker_pb2.Embedding(values=[0.5, -0.25]) for _ in request.inputs],
            prompt_tokens=3 * len(request.inputs),
        )


class FakeFilter(filter_pb2_grpc.SecurityFilterServicer):
    def __init__(self) -> None:
        self.calls: list[filter_pb2.CheckRequest] = []

    async def Check(self, request, context):
        self.calls.append(request)
        if "ignore instructions" in request.prompt:
            reason = filter_pb2.Reason(
                layer="patterns", rule="patterns.ignore_instructions", span="ignore"
            )
            return filter_pb2.Verdict(allowed=False, score=1.0, reasons=[reason])
        words = request.prompt.split()
        if (
            len(words) >= 200 and len(set(words)) <= 2
        ):  # long repetitive filler, like the real filter
            reason = filter_pb2.Reason(
                layer="heuristics", rule="heuristics.repetition", span=words[0]
            )
            return filter_pb2.Verdict(allowed=False, score=0.9, reasons=[reason])
        return filter_pb2.Verdict(allowed=True)


class RecordingAccess(StaticKeys):
    """StaticKeys plus knobs: a restricted principal, a rate limit, and captured records."""

    def __init__(self) -> None:
        super().__init__({KEY: "acme"})
        self.records: list[RequestRecord] = []
        self.patterns: tuple[str, ...] = ("*",)
        self.limited = False
        self.recording_broken = False  # ensure_recording() raises Unavailable (503)
        self.record_fails = False  # record() raises, as a failing store write would

    async def authenticate(self, api_key: str) -> Principal:
        p = await super().authenticate(api_key)
        return Principal(tenant=p.tenant, key_id=p.key_id, model_patterns=self.patterns)

    async def admit(self, principal: Principal, model: str, estimated_tokens: int) -> Admission:
        headers = {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "59"}
        if self.limited:
            raise RateLimited("Rate limit reached; retry later.", retry_after=7, headers=headers)
        return Admission(headers=headers, estimated_tokens=estimated_tokens)

    async def record(self, record: RequestRecord) -> None:
        if self.record_fails:
            raise RuntimeError("disk I/O error")
        self.records.append(record)

    def ensure_recording(self) -> None:
        if self.recording_broken:
            raise Unavailable("Usage and audit cannot be recorded right now.", retry_after=5)


async def _serve(add, servicer, name: str) -> tuple[grpc.aio.Server, str]:
    server, health = build_server([name])
    add(servicer, server)
    port = add_port(server, "127.0.0.1", 0, "test")
    await server.start()
    await set_serving(health, [name], True)
    return server, f"127.0.0.1:{port}"


@dataclass
class Mesh:
    stub: inference_pb2_grpc.InferenceStub
    workers: list[FakeWorker]
    filter: FakeFilter
    filter_server: grpc.aio.Server
    access: RecordingAccess
    pool: WorkerPool
    config: RouterConfig
    servers: list[grpc.aio.Server] = field(default_factory=list)

    def md(self, key: str = KEY, **extra: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {key}"), *extra.items())


def chat(model: str = "chat:1m", text: str = "hi") -> inference_pb2.ChatCompletionRequest:
    return inference_pb2.ChatCompletionRequest(
        model=model,
        messages=[common_pb2.ChatMessage(role="user", content=text)],
        sampling=common_pb2.SamplingParams(max_tokens=8),
    )


async def start_router(
    tmp_path: Path,
    workers: list[FakeWorker],
    disabled: frozenset[str] = frozenset(),
    access: RecordingAccess | None = None,
    **config_fields,
) -> Mesh:
    servers, addresses = [], []
    for w in workers:
        server, address = await _serve(
            worker_pb2_grpc.add_WorkerServicer_to_server, w, "llmaas.v1.Worker"
        )
        servers.append(server)
        addresses.append(address)
    fake_filter = FakeFilter()
    filter_server, filter_address = await _serve(
        filter_pb2_grpc.add_SecurityFilterServicer_to_server,
        fake_filter,
        "llmaas.v1.SecurityFilter",
    )
    (tmp_path / "catalog.csv").write_text(CATALOG)
    config = RouterConfig(
        filter_address=filter_address,
        filter_disabled_tenants=disabled,
        health_interval_s=0.1,
        **config_fields,
    )
    pool = WorkerPool(addresses, health_interval_s=0.1)
    await pool.start()
    access = access or RecordingAccess()
    filter_channel = grpc.aio.insecure_channel(filter_address)
    servicer = InferenceServicer(
        config,
        pool,
        Catalog.load(tmp_path / "catalog.csv"),
        access,
        filter_pb2_grpc.SecurityFilterStub(filter_channel),
        today=lambda: TODAY,
    )
    router, router_address = await _serve(
        inference_pb2_grpc.add_InferenceServicer_to_server, servicer, "llmaas.v1.Inference"
    )
    channel = grpc.aio.insecure_channel(router_address)
    for _ in range(100):  # probes run every 0.1 s
        if all(pool.is_served(m) for fw in workers for m in fw.models):
            break
        await asyncio.sleep(0.05)
    return Mesh(
        inference_pb2_grpc.InferenceStub(channel),
        workers,
        fake_filter,
        filter_server,
        access,
        pool,
        config,
        [*servers, router],
    )
