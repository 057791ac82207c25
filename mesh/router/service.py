"""InferenceServicer: the router's public API, a thin adapter over the request pipeline.

Each RPC builds the pipeline's input from the request and calls one step runner:
completions and embeddings `mesh.router.pipeline.run.Pipeline` (check the model id →
authenticate → resolve → admit → check the context length → screen → generate → settle),
the model reads `pipeline.resolve.Models`, the console `console_service.ConsoleSummaries`.
Reads record their refusals only (`Settle.refusals_recorded`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime

from mesh.alerts import Alerts
from mesh.catalog import Catalog
from mesh.observations import Observations
from mesh.pb import common_pb2, filter_pb2_grpc, inference_pb2, inference_pb2_grpc, worker_pb2
from mesh.router.access import AccessControl
from mesh.router.config import RouterConfig
from mesh.router.console_service import ConsoleSummaries
from mesh.router.content import ContentRecorder
from mesh.router.pipeline.admit import Admit
from mesh.router.pipeline.authenticate import authenticate
from mesh.router.pipeline.call import begin, check_model_id
from mesh.router.pipeline.context_length import ContextCheck
from mesh.router.pipeline.resolve import Models
from mesh.router.pipeline.run import Pipeline, Steps, prices_of
from mesh.router.pipeline.screen import Screen
from mesh.router.pipeline.settle import Settle
from mesh.router.workers import WorkerPool


class InferenceServicer(inference_pb2_grpc.InferenceServicer):
    def __init__(
        self,
        config: RouterConfig,
        pool: WorkerPool,
        catalog: Catalog,
        access: AccessControl,
        filter_stub: filter_pb2_grpc.SecurityFilterStub,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
        *,
        observations: Observations | None = None,
        alerts: Alerts | None = None,
        content_log: ContentRecorder | None = None,
    ) -> None:
        observations = observations or Observations()
        prices = prices_of(config)
        self._access = access
        self._models = models = Models(pool, catalog, today)
        self._settle = Settle(access, prices, pool.knows, observations, content_log)
        steps = Steps(
            models=models,
            admit=Admit(access, models.window, prices),
            context=ContextCheck(
                pool,
                models.window,
                (config.max_token_bytes, config.max_token_runs),
                config.request_timeout_s,
            ),
            screen=Screen(filter_stub, config),
            settle=self._settle,
        )
        self._pipeline = Pipeline(config, pool, access, steps, content_log)
        self._console = ConsoleSummaries(config, observations, alerts)

    async def ChatCompletion(
        self, request, context
    ) -> AsyncIterator[inference_pb2.CompletionChunk]:
        gen = worker_pb2.GenerateRequest(
            model=request.model,
            chat=worker_pb2.ChatPrompt(messages=request.messages, options=request.options),
            sampling=request.sampling,
        )
        prompt = "\n".join(m.content for m in request.messages)
        async for chunk in self._pipeline.complete(
            "chat.completions", gen, prompt, request.user, context
        ):
            yield chunk

    async def Completion(self, request, context) -> AsyncIterator[inference_pb2.CompletionChunk]:
        gen = worker_pb2.GenerateRequest(
            model=request.model, prompt=request.prompt, sampling=request.sampling, echo=request.echo
        )
        async for chunk in self._pipeline.complete(
            "completions", gen, request.prompt, request.user, context
        ):
            yield chunk

    async def Embeddings(self, request, context) -> inference_pb2.EmbeddingsResponse:
        return await self._pipeline.embed(request, context)

    async def ListModels(self, request, context) -> inference_pb2.ListModelsResponse:
        call = begin(context, "models.list", "")
        async with self._settle.refusals_recorded(call):
            call.principal = await authenticate(self._access, context)
            return inference_pb2.ListModelsResponse(models=self._models.visible(call.principal))

    async def GetModel(self, request, context) -> common_pb2.ModelInfo:
        call = begin(context, "models.get", request.id)
        async with self._settle.refusals_recorded(call):
            check_model_id(call)
            call.principal = await authenticate(self._access, context)
            return self._models.find(call.principal, request.id)

    async def GetConsoleSummary(self, request, context) -> inference_pb2.ConsoleSummary:
        call = begin(context, "console.summary", "")
        async with self._settle.refusals_recorded(call):
            call.principal = await authenticate(self._access, context)
            return await self._console.summary(call.principal, request)
