"""InferenceServicer: the router's public API.

Every generation request runs the same pipeline, one step per method:
identify → resolve the model → authorise → admit → check the context length (a worker
counts the tokens of a prompt that could overflow) → screen (security filter) → announce
(initial metadata) → generate on a worker (failover before the first token) → account.
The request is recorded whatever happens (`_tracked`), refusals and cancellations included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import grpc

from mesh import metrics, tracing
from mesh.alerts import Alerts
from mesh.console.data import build_summary
from mesh.errors import (
    ContextLengthExceeded,
    InvalidRequest,
    MeshError,
    ModelRetired,
    NotFound,
    PermissionDenied,
    PromptRejected,
    QuotaExceeded,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from mesh.observations import Observations, RequestSample
from mesh.pb import (
    common_pb2,
    filter_pb2,
    filter_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    worker_pb2,
)
from mesh.pricing import Prices
from mesh.router.access import (
    AccessControl,
    Admission,
    Principal,
    RequestRecord,
    check_model_allowed,
)
from mesh.router.accounting import TokenCounts, cost_eur, energy_kwh, format_decimal
from mesh.router.catalog import (
    Catalog,
    CatalogEntry,
    experimental_allowed,
    experimental_message,
    retired_message,
)
from mesh.router.config import RouterConfig
from mesh.router.content import ContentRecorder
from mesh.router.generation import generate, run_embed
from mesh.router.workers import WorkerPool

log = logging.getLogger(__name__)

FINISHED = common_pb2.FINISH_REASON_UNSPECIFIED
# Trace attribute gen_ai.operation.name per action (GenAI semantic conventions).
OPERATIONS = {
    "chat.completions": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
# The context-length pre-check (_check_context_length): a worker counts the prompt's tokens
# only when its UTF-8 bytes (every token covers at least one byte) + max_tokens come within
# this many tokens of the window: room for the chat template's markup and default system
# prompt, plus some per message.
TEMPLATE_MARGIN_TOKENS = 64
MESSAGE_MARGIN_TOKENS = 16
COUNT_TOKENS_TIMEOUT_S = 2.0


@dataclass(slots=True)
class Call:
    """One request moving through the pipeline; becomes a RequestRecord at the end."""

    action: str
    model: str
    request_id: str
    started: float = field(default_factory=time.monotonic)
    created: int = field(default_factory=lambda: int(time.time()))
    principal: Principal | None = None
    admission: Admission | None = None
    entry: CatalogEntry | None = None
    # What the workers announce for `model`: the catalog's `weights` mapping, else the id itself.
    worker_model: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str = "error"
    status: int = 500
    reason: str = ""
    filter_verdict: str = ""
    tokens: TokenCounts = field(default_factory=TokenCounts)
    system_tokens: int = 0
    num_streamed: int = 0
    # Prompt tokens are only counted by the worker at the end; a cancelled request bills this.
    prompt_estimate: int = 0
    cost: Decimal = Decimal(0)
    energy: Decimal = Decimal(0)
    perf_start: float = field(default_factory=time.perf_counter)
    clock: metrics.RequestClock | None = None  # once the model is known to be real
    finish_reasons: list[str] = field(default_factory=list)
    settled: bool = False  # the worker's final usage arrived
    recorded: bool = False  # usage and audit written (exactly once)
    # Content logging (tenant opted in): the prompt and the answer's pieces, sealed at the end.
    prompt_text: str = ""
    answer_parts: list[str] | None = None

    def to_record(self) -> RequestRecord:
        p = self.principal
        return RequestRecord(
            request_id=self.request_id,
            action=self.action,
            model=self.model,
            outcome=self.outcome,
            status=self.status,
            principal=p,
            key_id=p.key_id if p else "",
            reason=self.reason,
            input_tokens=self.tokens.prompt,
            output_tokens=self.tokens.completion,
            reasoning_tokens=self.tokens.reasoning,
            system_tokens=self.system_tokens,
            cost_eur=self.cost,
            energy_kwh=self.energy,
            latency_ms=(time.monotonic() - self.started) * 1000,
            filter_verdict=self.filter_verdict,
        )


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
        self._content_log = content_log
        self._observations = observations or Observations()
        self._alerts = alerts
        self._config = config
        self._pool = pool
        self._catalog = catalog
        self._access = access
        self._filter = filter_stub
        self._today = today

    # -- RPCs ---------------------------------------------------------------------------

    async def ChatCompletion(
        self, request, context
    ) -> AsyncIterator[inference_pb2.CompletionChunk]:
        gen = worker_pb2.GenerateRequest(
            model=request.model,
            chat=worker_pb2.ChatPrompt(messages=request.messages),
            sampling=request.sampling,
        )
        prompt = "\n".join(m.content for m in request.messages)
        async for chunk in self._complete("chat.completions", gen, prompt, request.user, context):
            yield chunk

    async def Completion(self, request, context) -> AsyncIterator[inference_pb2.CompletionChunk]:
        gen = worker_pb2.GenerateRequest(
            model=request.model, prompt=request.prompt, sampling=request.sampling
        )
        async for chunk in self._complete(
            "completions", gen, request.prompt, request.user, context
        ):
            yield chunk

    async def Embeddings(self, request, context) -> inference_pb2.EmbeddingsResponse:
        call = self._begin(context, "embeddings", request.model)
        async with self._tracked(call):
            estimate = sum(len(s) for s in request.inputs) // 4 + 1
            await self._prepare(call, context, kind="embedding", estimated_tokens=estimate)
            tracing.set_attributes(tracing.genai_request_attributes("embeddings", call.model))
            await context.send_initial_metadata(self._initial_metadata(call))
            embed = worker_pb2.EmbedRequest(
                request_id=call.request_id, model=call.worker_model, inputs=request.inputs
            )
            reply = await run_embed(
                self._pool,
                embed,
                timeout=self._timeout(context),
                tenant=call.principal.tenant,
                weight=self._weight(call),
            )
            self._settle(call, common_pb2.Usage(prompt_tokens=reply.prompt_tokens))
            call.outcome, call.status = "ok", 200
            return inference_pb2.EmbeddingsResponse(
                model=call.model,
                data=[inference_pb2.EmbeddingVector(values=e.values) for e in reply.embeddings],
                usage=common_pb2.Usage(prompt_tokens=reply.prompt_tokens),
                cost=self._cost_pb(call),
            )

    async def ListModels(self, request, context) -> inference_pb2.ListModelsResponse:
        principal = await self._authenticate(context)
        return inference_pb2.ListModelsResponse(models=self._visible_models(principal))

    async def GetModel(self, request, context) -> common_pb2.ModelInfo:
        principal = await self._authenticate(context)
        for info in self._visible_models(principal, include_retired=True):
            if info.id == request.id:
                return info
        raise NotFound(
            f"The model '{request.id}' does not exist or your key may not use it. "
            "List the available models with GET /v1/models.",
            param="model",
        )

    async def GetConsoleSummary(self, request, context) -> inference_pb2.ConsoleSummary:
        """The console's data: an admin key sees every tenant, a tenant key only its own."""
        principal = await self._authenticate(context)
        summary = build_summary(
            self._observations.records(),
            self._alerts.firing() if self._alerts is not None else [],
            None if principal.admin else principal.tenant,
            window_s=min(max(request.window_seconds or 3600, 60), 7 * 86400),
            bucket_s=min(max(request.bucket_seconds or 60, 1), 3600),
        )
        return inference_pb2.ConsoleSummary(json=json.dumps(summary))

    # -- pipeline -----------------------------------------------------------------------

    async def _complete(
        self, action: str, gen: worker_pb2.GenerateRequest, prompt: str, user: str, context
    ) -> AsyncIterator[inference_pb2.CompletionChunk]:
        call = self._begin(context, action, gen.model)
        async with self._tracked(call):
            call.prompt_estimate = len(prompt) // 4 + 1  # ~4 characters per token
            estimate = call.prompt_estimate + (gen.sampling.max_tokens or 256)
            await self._prepare(call, context, kind="chat", estimated_tokens=estimate)
            if call.principal.content_logging and self._content_log is not None:
                call.prompt_text, call.answer_parts = prompt, []
            call.clock = metrics.RequestClock(
                call.model, call.principal.tenant, start=call.perf_start
            )
            tracing.set_attributes(
                tracing.genai_request_attributes(
                    OPERATIONS[action],
                    call.model,
                    gen.sampling.max_tokens or None,
                    gen.sampling.temperature,
                )
            )
            await self._check_context_length(call, gen, context)  # validation, before the filter
            await self._screen(call, prompt, user)
            await context.send_initial_metadata(self._initial_metadata(call))
            gen.request_id, gen.tenant = call.request_id, call.principal.tenant
            gen.model = call.worker_model  # the weights the operator mapped this id to
            async for resp in generate(
                self._pool, gen, timeout=self._timeout(context), weight=self._weight(call)
            ):
                chunk = self._to_chunk(call, resp)
                if call.settled:
                    # Usage and audit are on disk before the client sees the end of the answer,
                    # so a router crash right after cannot lose a completed request's record.
                    call.outcome, call.status = "ok", 200
                    await self._finish(call)
                yield chunk
            call.outcome, call.status = "ok", 200

    def _begin(self, context, action: str, model: str) -> Call:
        md = _metadata(context)
        request_id = md.get("x-request-id", "")
        if not (0 < len(request_id) <= 128 and request_id.isprintable()):
            request_id = uuid.uuid4().hex
        return Call(action=action, model=model, request_id=request_id)

    @contextlib.asynccontextmanager
    async def _tracked(self, call: Call) -> AsyncIterator[Call]:
        try:
            yield call
        except MeshError as err:
            call.outcome = (
                "refused" if call.num_streamed == 0 and err.http_status < 500 else "error"
            )
            call.status, call.reason = err.http_status, f"{err.code}: {err.message}"
            # Rate-limit facts go out with the error too, so the edge can copy them.
            err.headers = {**call.headers, **err.headers}
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # A cancel after the final chunk (the edge closing the call) changes nothing.
            if not call.settled:
                call.outcome, call.status, call.reason = "cancelled", 499, "client cancelled"
                if call.num_streamed:
                    self._settle(call, None)
            raise
        finally:
            await self._finish(call)

    async def _prepare(self, call: Call, context, *, kind: str, estimated_tokens: int) -> None:
        call.principal = await self._authenticate(context)
        tracing.set_attributes({tracing.LLMAAS_TENANT: call.principal.tenant})
        self._resolve_model(call, kind)
        self._authorise(call)
        self._check_served(call)
        try:
            call.admission = await self._access.admit(call.principal, call.model, estimated_tokens)
        except (RateLimited, QuotaExceeded) as err:
            metrics.observe_ratelimit_refusal(call.principal.tenant, _refusal_reason(err))
            raise
        call.headers.update({k.lower(): v for k, v in call.admission.headers.items()})

    async def _authenticate(self, context) -> Principal:
        header = _metadata(context).get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated(
                "You didn't provide an API key. Pass it as 'Authorization: Bearer <key>'.",
                code="missing_api_key",
            )
        return await self._access.authenticate(key.strip())

    def _worker_model(self, model_id: str, entry: CatalogEntry | None) -> str:
        """The model id workers announce for `model_id`. A catalog entry is served by the
        weights its `weights` column names (a builtin id such as 'smollm2:135m', or a path,
        announced by its file stem / directory name); without a mapping, only by a worker
        announcing the id itself. Never by any other model's weights."""
        if entry is None or not entry.weights:
            return model_id
        weights = entry.weights
        if self._pool.knows(weights):
            return weights
        path = Path(weights)
        return next(
            (alias for alias in (path.name, path.stem) if alias and self._pool.knows(alias)),
            weights,
        )

    def _resolve_model(self, call: Call, kind: str) -> None:
        call.entry = entry = self._catalog.get(call.model)
        call.worker_model = self._worker_model(call.model, entry)
        if entry is None and not self._pool.knows(call.model):
            raise NotFound(
                f"The model '{call.model}' does not exist. List the available models with GET /v1/models.",
                code="model_not_found",
                param="model",
            )
        if entry is not None:
            lifecycle = self._catalog.lifecycle(entry.id, self._today())
            if lifecycle.state == "retired":
                raise ModelRetired(retired_message(entry), code="model_retired", param="model")
            call.headers.update({k.lower(): v for k, v in lifecycle.headers.items()})
        model_kind = entry.kind if entry else self._pool.model_infos()[call.model].kind or "chat"
        if model_kind != kind:
            endpoint = "/v1/embeddings" if model_kind == "embedding" else "/v1/chat/completions"
            raise InvalidRequest(
                f"The model '{call.model}' is a {model_kind} model; call {endpoint} with it.",
                code="model_not_supported",
                param="model",
            )

    def _authorise(self, call: Call) -> None:
        check_model_allowed(call.principal, call.model)
        if call.entry is not None and not experimental_allowed(
            call.entry, call.principal.experimental_opt_in
        ):
            raise PermissionDenied(
                experimental_message(call.entry), code="model_not_allowed", param="model"
            )

    def _check_served(self, call: Call) -> None:
        if self._pool.is_served(call.worker_model):
            return
        if self._pool.knows(call.worker_model):
            raise Unavailable(
                f"No healthy worker serves '{call.model}' right now; retry in a few seconds.",
                code="model_unavailable",
                param="model",
                retry_after=5,
            )
        raise Unavailable(
            f"The model '{call.model}' is in the catalog but not served on this platform. "
            "Pick a served model from GET /v1/models.",
            code="model_unavailable",
            param="model",
        )

    async def _check_context_length(
        self, call: Call, gen: worker_pb2.GenerateRequest, context
    ) -> None:
        """400 context_length_exceeded for a prompt that cannot fit the model's window, before
        the security filter judges it (long filler is how clients probe the limit; the filter
        would call it repetition). Tokenising lives on the workers: only a prompt that could
        overflow by its byte count asks one (CountTokens, which creates no sequence); short
        prompts take no extra call. A worker that does not answer leaves the check to
        Generate's own, after the filter."""
        window = self._pool.context_length(call.worker_model) or (
            call.entry.context_length if call.entry else 0
        )
        max_tokens = max(0, gen.sampling.max_tokens)  # 0: up to the window
        if not window or not _could_overflow(gen, window, max_tokens):
            return
        worker = self._pool.pick(call.worker_model)
        if worker is None:
            return
        count = worker_pb2.GenerateRequest()
        count.CopyFrom(gen)
        count.request_id, count.model, count.tenant = (
            call.request_id,
            call.worker_model,
            call.principal.tenant,
        )
        try:
            reply = await worker.stub.CountTokens(
                count,
                timeout=min(COUNT_TOKENS_TIMEOUT_S, self._timeout(context)),
                metadata=tracing.inject_metadata(),
            )
        except grpc.aio.AioRpcError as err:
            log.info(
                "CountTokens on %s failed (%s): the worker checks the length itself",
                worker.address,
                err.code().name,
            )
            return
        window, num_prompt = reply.context_length or window, reply.prompt_tokens
        call.prompt_estimate = num_prompt  # exact now (billed if cancelled mid-stream)
        if max_tokens and num_prompt + max_tokens > window:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {window} tokens; your prompt has "
                f"{num_prompt} tokens and max_tokens asks for {max_tokens}. "
                "Shorten the prompt or lower max_tokens.",
                param="messages" if num_prompt >= window else "max_tokens",
            )
        if not max_tokens and num_prompt >= window:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {window} tokens; your prompt has "
                f"{num_prompt} tokens, which leaves no room to generate. Shorten the prompt."
            )

    async def _screen(self, call: Call, prompt: str, user: str) -> None:
        tenant = call.principal.tenant
        if not (call.principal.filter_enabled and self._config.filter_enabled_for(tenant)):
            call.filter_verdict = "disabled"
            return
        check = filter_pb2.CheckRequest(
            request_id=call.request_id, tenant=tenant, user=user, prompt=prompt
        )
        try:
            verdict = await self._filter.Check(
                check, timeout=self._config.filter_timeout_s, metadata=tracing.inject_metadata()
            )
        except grpc.aio.AioRpcError as err:
            log.error("security filter unreachable (%s): failing closed", err.code().name)
            raise Unavailable(
                "The security filter is unavailable, so the request was refused (security filter "
                "unavailable: prompts are never sent unchecked). Retry in a few seconds.",
                code="filter_unavailable",
                retry_after=2,
            ) from None
        call.filter_verdict = _describe(verdict)
        if not verdict.allowed:
            raise PromptRejected(
                f"The prompt was rejected by the security filter ({call.filter_verdict}). "
                "Remove the flagged content and try again."
            )

    def _initial_metadata(self, call: Call) -> tuple[tuple[str, str], ...]:
        return (("x-request-id", call.request_id), *call.headers.items())

    def _to_chunk(
        self, call: Call, resp: worker_pb2.GenerateResponse
    ) -> inference_pb2.CompletionChunk:
        call.num_streamed += resp.num_tokens
        if call.answer_parts is not None:
            call.answer_parts.append(resp.text)
        if call.clock is not None:
            call.clock.tokens(resp.num_tokens)
        chunk = inference_pb2.CompletionChunk(
            id=call.request_id,
            model=call.model,
            created=call.created,
            text=resp.text,
            reasoning_text=resp.reasoning_text,
            finish_reason=resp.finish_reason,
        )
        if resp.finish_reason != FINISHED:
            self._settle(call, resp.usage)
            call.settled = True
            chunk.usage.CopyFrom(resp.usage)
            chunk.cost.CopyFrom(self._cost_pb(call))
            reason = (
                common_pb2.FinishReason.Name(resp.finish_reason)
                .removeprefix("FINISH_REASON_")
                .lower()
            )
            call.finish_reasons.append(reason)
            tracing.set_attributes(
                tracing.genai_response_attributes(
                    call.model,
                    call.finish_reasons,
                    resp.usage.prompt_tokens,
                    resp.usage.completion_tokens,
                    call.request_id,
                )
            )
        return chunk

    def _settle(self, call: Call, usage: common_pb2.Usage | None) -> None:
        """Token counts, cost and energy; without usage (cancelled) from what was streamed."""
        if usage is None:
            usage = common_pb2.Usage(
                prompt_tokens=call.prompt_estimate, completion_tokens=call.num_streamed
            )
        call.tokens = TokenCounts(
            usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens
        )
        call.system_tokens = usage.system_tokens
        call.cost = cost_eur(call.tokens, self._prices(call))
        kwh = call.entry.energy_kwh_per_mtok if call.entry else None
        call.energy = energy_kwh(call.tokens, kwh)

    def _prices(self, call: Call) -> Prices:
        return Prices.for_entry(call.entry, self._config.prices_for(call.model))

    def _cost_pb(self, call: Call) -> common_pb2.Cost:
        return common_pb2.Cost(
            cost_eur=format_decimal(call.cost), energy_kwh=format_decimal(call.energy)
        )

    def _weight(self, call: Call) -> float:
        """The tenant's fair-queue weight (its billing tier's `weight`; 1 without tiers)."""
        tier_of = getattr(self._access, "tier", None)
        if tier_of is None or call.principal is None:
            return 1.0
        return float(max(1, tier_of(call.principal.tier).weight))

    def _timeout(self, context) -> float:
        remaining = context.time_remaining()
        limit = self._config.request_timeout_s
        return limit if remaining is None else max(0.001, min(remaining, limit))

    async def _finish(self, call: Call) -> None:
        if call.recorded:
            return
        call.recorded = True
        record = call.to_record()
        try:  # first, without awaiting: a cancellation below must not lose the metrics
            self._observe(call)
        except Exception:  # noqa: BLE001 - metrics must never change the answer
            log.exception("could not observe request %s", call.request_id)
        try:
            if call.admission is not None and call.principal is not None:
                await self._access.release(call.principal, call.admission, record)
            await self._access.record(record)
        except Exception:  # noqa: BLE001 - accounting trouble must not change the answer
            log.exception("could not record request %s", call.request_id)
        if call.answer_parts is not None and call.principal is not None:
            try:  # encrypted at rest (AES-256-GCM, the tenant's key): see mesh.router.content
                await self._content_log.record(
                    call.principal.tenant,
                    call.request_id,
                    call.prompt_text,
                    "".join(call.answer_parts),
                )
            except Exception:  # noqa: BLE001
                log.exception("could not log the content of request %s", call.request_id)
        self._observe_budget(call)  # after record(): the spend includes this request

    def _observe(self, call: Call) -> None:
        """Prometheus metrics and the console/alert observations of one finished request."""
        # Label values stay bounded: a model only once resolved, a tenant only once authenticated.
        real_model = call.entry is not None or self._pool.knows(call.model)
        model = call.model if real_model else "unknown"
        tenant = call.principal.tenant if call.principal is not None else "unauthenticated"
        status = str(call.status)
        if call.clock is not None:
            duration = call.clock.finish(status)
            ttft = call.clock.ttft_s
        else:
            duration, ttft = time.perf_counter() - call.perf_start, None
            metrics.observe_request(model, tenant, status, duration)
        t, system = call.tokens, call.system_tokens
        metrics.observe_tokens(
            model,
            tenant,
            input=max(0, t.prompt - system),
            output=max(0, t.completion - t.reasoning),
            reasoning=t.reasoning,
            system=system,
        )
        metrics.observe_cost(model, tenant, call.cost, call.energy)
        self._observations.record_request(
            RequestSample(
                t=time.time(),
                model=model,
                tenant=tenant,
                status=status,
                ttft_s=ttft,
                duration_s=duration,
                input_tokens=t.prompt,
                output_tokens=t.completion,
                reasoning_tokens=t.reasoning,
                cost_eur=float(call.cost),
                energy_kwh=float(call.energy),
                request_id=call.request_id,
            )
        )

    def _observe_budget(self, call: Call) -> None:
        """The tenant's month-to-date spend over its tier budget, where the accounts know it."""
        budget, tier_of = getattr(self._access, "budget", None), getattr(self._access, "tier", None)
        if call.principal is None or budget is None or tier_of is None or not call.cost:
            return
        try:
            limit = tier_of(call.principal.tier).monthly_budget_eur
            if limit:
                ratio = float(budget.spent(call.principal.tenant) / limit)
                metrics.observe_budget(call.principal.tenant, ratio)
                self._observations.record_budget(call.principal.tenant, ratio)
        except Exception:  # noqa: BLE001 - metrics must never change the answer
            log.exception("could not observe the budget of %s", call.principal.tenant)

    # -- models -------------------------------------------------------------------------

    def _visible_models(
        self, principal: Principal, include_retired: bool = False
    ) -> list[common_pb2.ModelInfo]:
        served = self._pool.model_infos()
        out: list[common_pb2.ModelInfo] = []
        for entry in self._catalog.entries():
            if not principal.may_use(entry.id):
                continue
            if not experimental_allowed(entry, principal.experimental_opt_in):
                continue
            info = self._catalog_info(entry, served.get(self._worker_model(entry.id, entry)))
            if include_retired or info.phase != "retired":
                out.append(info)
        listed = {m.id for m in out}
        out.extend(m for m in served.values() if m.id not in listed and principal.may_use(m.id))
        return out

    def _catalog_info(
        self, entry: CatalogEntry, worker_info: common_pb2.ModelInfo | None
    ) -> common_pb2.ModelInfo:
        lifecycle = self._catalog.lifecycle(entry.id, self._today())
        phase = {"retired": "retired", "notice": "deprecated"}.get(lifecycle.state, entry.phase)
        return common_pb2.ModelInfo(
            id=entry.id,
            owned_by=entry.editor,
            created=_unix(entry.dmp),
            phase=phase,
            dmp=entry.dmp.isoformat(),
            dsp=entry.dsp.isoformat() if entry.dsp else "",
            # What the worker actually accepts wins over the catalog's nominal window.
            context_length=(worker_info.context_length if worker_info else 0)
            or entry.context_length,
            served=bool(worker_info and worker_info.served) and phase != "retired",
            kind=entry.kind,
            successor=entry.successor or "",
            energy_kwh_per_mtok=float(entry.energy_kwh_per_mtok),
            deprecation_date=lifecycle.notice_start.isoformat() if lifecycle.notice_start else "",
        )


def _metadata(context) -> dict[str, str]:
    return {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _could_overflow(gen: worker_pb2.GenerateRequest, window: int, max_tokens: int) -> bool:
    """Whether prompt + max_tokens might not fit `window` (cheap, never a false no): a token
    covers at least one UTF-8 byte, so the byte count bounds the tokens of the text; the
    margins bound what the chat template adds."""
    if gen.WhichOneof("input") == "chat":
        messages = gen.chat.messages
        num_bytes = sum(
            len(m.role.encode()) + len(m.name.encode()) + len(m.content.encode()) for m in messages
        )
        margin = TEMPLATE_MARGIN_TOKENS + MESSAGE_MARGIN_TOKENS * len(messages)
    else:
        num_bytes, margin = len(gen.prompt.encode()), TEMPLATE_MARGIN_TOKENS
    return num_bytes + max_tokens >= window - margin


def _refusal_reason(err: MeshError) -> str:
    """A short fixed word for the rate-limit refusal metric (never free text)."""
    if isinstance(err, QuotaExceeded):
        return "budget"
    text = err.message.lower()
    for needle, reason in (
        ("concurrent", "concurrency"),
        ("requests per minute", "rpm"),
        ("tokens per minute", "tpm"),
    ):
        if needle in text:
            return reason
    return "other"


def _describe(verdict: filter_pb2.Verdict) -> str:
    if not verdict.reasons:
        return "allowed" if verdict.allowed else f"blocked (score {verdict.score:.2f})"
    return ", ".join(f"{r.layer}/{r.rule}" for r in verdict.reasons)


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
