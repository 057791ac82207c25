"""The Worker gRPC service for an embedding model (all-minilm:22m).

Requests are validated on the event loop's side of a thread hop, then coalesced: while one
batch runs in a thread (`asyncio.to_thread`, so the loop keeps serving health and load
calls), requests that arrive are queued and run together as the next batch.

Under mTLS only the router may call it (the same role check as the chat worker). On SIGTERM
the load streams end at once (their last report says draining) and only in-flight Embed
calls are waited for, at most `EMBED_DRAIN_MAX_S`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import torch

from mesh.aio import wait_event
from mesh.catalog import Catalog
from mesh.catalog.model_info import model_info as catalog_info
from mesh.errors import ContextLengthExceeded, InvalidRequest, NotFound, Unavailable
from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from mesh.rpc import add_port, build_server, set_serving
from worker.embedding import MODEL_ID, EmbeddingModel

log = logging.getLogger(__name__)

SERVICE_NAME = worker_pb2.DESCRIPTOR.services_by_name["Worker"].full_name
EMBEDDING_MODELS = frozenset({MODEL_ID})
MAX_INPUTS = 2048  # OpenAI's limit on inputs per embeddings request
MAX_INPUT_CHARS = 100_000  # refuse before tokenising something absurd
MAX_BATCH_INPUTS = 256  # inputs run together in one coalesced batch
# A batch takes well under a second; a stop never waits longer than this for one, so a
# SIGTERM'd mesh is gone within seconds, not after the chat worker's 30 s drain.
EMBED_DRAIN_MAX_S = 5.0


def is_embedding_model(model: str) -> bool:
    return model in EMBEDDING_MODELS


@dataclass(frozen=True, slots=True)
class EmbeddingServed:
    """What __main__ needs to announce the worker (same fields as worker.service.ServedModel)."""

    model_id: str
    context_length: int
    worker_id: str
    max_num_seqs: int
    device: str
    dtype: str = "float32"


# -- coalescing -----------------------------------------------------------------------

Batch = list[list[int]]
Result = tuple[torch.Tensor, int]


@dataclass(slots=True)
class _Job:
    ids: Batch
    future: asyncio.Future[Result] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Coalescer:
    """Runs `fn` in a thread over the concatenation of the jobs queued since the last run."""

    def __init__(self, fn: Callable[[Batch], Result], max_inputs: int = MAX_BATCH_INPUTS) -> None:
        self.fn = fn
        self.max_inputs = max_inputs
        self.pending: list[_Job] = []
        self.running = 0  # requests in the batch being computed
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, ids: Batch) -> Result:
        job = _Job(ids)
        self.pending.append(job)
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await job.future

    def _take(self) -> list[_Job]:
        jobs, count = [], 0
        while self.pending and (not jobs or count + len(self.pending[0].ids) <= self.max_inputs):
            job = self.pending.pop(0)
            if not job.future.done():  # skip callers that went away
                jobs.append(job)
                count += len(job.ids)
        return jobs

    async def _run(self) -> None:
        while self.pending:
            jobs = self._take()
            if not jobs:
                continue
            self.running = len(jobs)
            try:
                vecs, _ = await asyncio.to_thread(self.fn, [s for j in jobs for s in j.ids])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            finally:
                self.running = 0
            self._deliver(jobs, vecs)

    @staticmethod
    def _deliver(jobs: list[_Job], vecs: torch.Tensor) -> None:
        row = 0
        for job in jobs:
            n = len(job.ids)
            if not job.future.done():
                job.future.set_result((vecs[row : row + n], sum(map(len, job.ids))))
            row += n


# -- servicer -------------------------------------------------------------------------


class EmbeddingWorkerServicer(worker_pb2_grpc.WorkerServicer):
    def __init__(self, model: EmbeddingModel, served: EmbeddingServed) -> None:
        self.model = model
        self.served = served
        self.coalescer = Coalescer(model.embed_ids)
        self.draining = False
        # Set on drain: ends every WatchLoad stream at once (they would hold the stop).
        self.stopping = asyncio.Event()
        self.num_requests_total = 0
        self.num_tokens_total = 0

    async def Generate(
        self, request: worker_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.GenerateResponse]:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"'{self.served.model_id}' is an embedding model: use POST /v1/embeddings, or a chat "
            "model (e.g. smollm2:135m) for chat completions.",
        )
        yield worker_pb2.GenerateResponse()  # unreachable; makes this an async generator

    async def Embed(
        self, request: worker_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.EmbedResponse:
        # MeshErrors raised here become INVALID_ARGUMENT etc. with llmaas-error-* metadata
        # through mesh.rpc's ErrorInterceptor.
        self._check_request(request)
        texts = list(request.inputs)
        seqs = await asyncio.to_thread(self.model.tokenize, texts)
        self._check_lengths(seqs)
        self.num_requests_total += 1
        vecs, tokens = await self.coalescer.submit(seqs)
        self.num_tokens_total += tokens
        return worker_pb2.EmbedResponse(
            embeddings=[worker_pb2.Embedding(values=v.tolist()) for v in vecs], prompt_tokens=tokens
        )

    async def CountTokens(
        self, request: worker_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.CountTokensResponse:
        """Tokens of the text(s) as Embed would count them ([CLS]/[SEP] included; each chat
        message is one input); the window is per input. Only tokenises: no counter moves."""
        if request.model and request.model != self.served.model_id:
            raise NotFound(
                f"This worker serves '{self.served.model_id}', not '{request.model}'.",
                param="model",
            )
        if request.WhichOneof("input") == "prompt":
            texts = [request.prompt]
        else:
            texts = [m.content for m in request.chat.messages]
        seqs = await asyncio.to_thread(self.model.tokenize, texts) if texts else []
        return worker_pb2.CountTokensResponse(
            prompt_tokens=sum(map(len, seqs)), context_length=self.served.context_length
        )

    async def Info(
        self, request: worker_pb2.InfoRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.InfoResponse:
        s = self.served
        return worker_pb2.InfoResponse(
            worker_id=s.worker_id,
            models=[model_info(s)],
            max_num_seqs=s.max_num_seqs,
            device=s.device,
            dtype=s.dtype,
        )

    async def GetLoad(
        self, request: worker_pb2.LoadRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.LoadReport:
        return self.load_report()

    async def WatchLoad(
        self, request: worker_pb2.LoadRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.LoadReport]:
        """The load when it changes (polled every interval, >= 50 ms); ends when stopping,
        after a last report (draining) so the router takes the worker out of rotation."""
        interval_s = max(request.interval_ms or 500, 50) / 1000
        last = None
        while True:
            report = self.load_report()
            if report != last:
                yield report
                last = report
            if self.stopping.is_set():
                return
            await wait_event(self.stopping, interval_s)

    def load_report(self) -> worker_pb2.LoadReport:
        return worker_pb2.LoadReport(
            worker_id=self.served.worker_id,
            num_running=self.coalescer.running,
            num_waiting=len(self.coalescer.pending),
            max_num_seqs=self.served.max_num_seqs,
            draining=self.draining,
            num_requests_total=self.num_requests_total,
        )

    def _check_request(self, request: worker_pb2.EmbedRequest) -> None:
        if self.draining:
            raise Unavailable(f"worker {self.served.worker_id} is shutting down; retry.")
        if request.model and request.model != self.served.model_id:
            raise NotFound(
                f"This worker serves '{self.served.model_id}', not '{request.model}'.",
                param="model",
            )
        if not request.inputs:
            raise InvalidRequest(
                "'input' must be a non-empty string or list of strings.", param="input"
            )
        if len(request.inputs) > MAX_INPUTS:
            raise InvalidRequest(
                f"'input' has {len(request.inputs)} items; at most {MAX_INPUTS} "
                "per request. Split it into several requests.",
                param="input",
            )
        for i, text in enumerate(request.inputs):
            if not text:
                raise InvalidRequest(
                    f"input[{i}] is empty; every input must contain text.", param="input"
                )
            if len(text) > MAX_INPUT_CHARS:
                self._too_long(i, f"{len(text)} characters")

    def _check_lengths(self, seqs: list[list[int]]) -> None:
        for i, ids in enumerate(seqs):
            if len(ids) > self.served.context_length:
                self._too_long(i, f"{len(ids)} tokens")

    def _too_long(self, index: int, size: str) -> None:
        raise ContextLengthExceeded(
            f"input[{index}] has {size}; '{self.served.model_id}' embeds at most "
            f"{self.served.context_length} tokens per input. Split the text into smaller "
            "chunks.",
            param="input",
        )


def model_info(served: EmbeddingServed) -> common_pb2.ModelInfo:
    """ModelInfo for Info; catalog facts (editor, DMP, energy) when the catalog has the id."""
    info = common_pb2.ModelInfo(
        id=served.model_id,
        context_length=served.context_length,
        served=True,
        kind="embedding",
        phase="production",
    )
    try:
        catalog = Catalog.load()
        entry = catalog.get(served.model_id)
    except (OSError, ValueError) as exc:
        log.warning("catalog unavailable for Info: %s", exc)
        entry = None
    return info if entry is None else catalog_info(entry, catalog.lifecycle(entry.id), info)


# -- server ---------------------------------------------------------------------------


class EmbeddingWorkerServer:
    """Same surface as worker.service.WorkerServer: start, drain_and_stop, wait."""

    def __init__(self, model: EmbeddingModel, served: EmbeddingServed) -> None:
        self.served = served
        self.servicer = EmbeddingWorkerServicer(model, served)
        # mesh.rpc's bootstrap, as the chat worker's: with LLMAAS_TLS=1 only the router's
        # certificate may call.
        self.server, self.health = build_server([SERVICE_NAME], role="worker")
        worker_pb2_grpc.add_WorkerServicer_to_server(self.servicer, self.server)
        self.port = 0

    @classmethod
    def load(cls, model_id: str, worker_id: str, device: str = "cpu") -> EmbeddingWorkerServer:
        if not is_embedding_model(model_id):
            raise ValueError(f"{model_id!r} is not an embedding model ({sorted(EMBEDDING_MODELS)})")
        model = EmbeddingModel.load(device)
        served = EmbeddingServed(
            model_id=model_id,
            context_length=model.max_tokens,
            worker_id=worker_id,
            max_num_seqs=MAX_BATCH_INPUTS,
            device=device,
        )
        return cls(model, served)

    async def start(self, address: str) -> int:
        host, _, port = address.rpartition(":")
        self.port = add_port(self.server, host, int(port), "worker")
        await self.server.start()
        await set_serving(self.health, [SERVICE_NAME], True)
        return self.port

    async def drain_and_stop(self, timeout_s: float) -> None:
        """Refuses new Embeds, ends the load streams now, lets in-flight Embeds finish for at
        most min(timeout_s, EMBED_DRAIN_MAX_S), then stops (cancelling what is left)."""
        self.servicer.draining = True
        self.servicer.stopping.set()
        await set_serving(self.health, [SERVICE_NAME], False)
        await self.server.stop(grace=min(timeout_s, EMBED_DRAIN_MAX_S))

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()
