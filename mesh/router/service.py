"""InferenceServicer: the router's public API.

Every generation request runs the same pipeline, one step per method:
check the model id's length → identify → resolve the model → authorise → make sure usage
and audit can be written (else 503) → admit (rate limits; the estimated cost is held against
the budget while in flight) → check the context length (by bytes first: a prompt that cannot
fit is refused before anything tokenises it; a worker counts the tokens of one that could
overflow) → screen (security filter) → announce (initial metadata) → generate on a worker
(failover before the first token) → account.
The request is recorded whatever happens (`_tracked`), refusals and cancellations included;
the model reads and the console record their refusals (`_refusals_recorded`).
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
from mesh.catalog import (
    Catalog,
    CatalogEntry,
    experimental_allowed,
    experimental_message,
    retired_message,
)
from mesh.catalog.model_info import model_info
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
from mesh.prompt_bounds import token_floor
from mesh.router.access import (
    AccessControl,
    Admission,
    Principal,
    RequestRecord,
    check_model_allowed,
)
from mesh.router.accounting import TokenCounts, cost_eur, energy_kwh, format_decimal
from mesh.router.accounts import AUDIT_UNAVAILABLE
from mesh.router.config import RouterConfig
from mesh.router.content import ContentRecorder
from mesh.router.generation import generate, run_embed
from mesh.router.ratelimit import CallLimiter, Hold
from mesh.router.tenants import Tier
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
# Without max_tokens and without a known window, the output estimate for the rate limiter.
DEFAULT_OUTPUT_ESTIMATE = 256
# Model ids are short (`family:size`); a longer one is refused before anything else, and
# never copied whole into records, logs or metadata: RECORDED_CHARS of it are kept.
MAX_MODEL_ID_CHARS = 256
RECORDED_CHARS = 64


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
    # A worker took the request (its prompt is being computed): billed even if cancelled.
    dispatched: bool = False
    # Prompt and system tokens a worker reported before its final message (0: not said).
    reported_prompt: int = 0
    reported_system: int = 0
    # The client's model string was over MAX_MODEL_ID_CHARS: its length (`model` is clipped).
    model_chars: int = 0
    hold: Hold | None = None  # the estimated cost held against the budget while in flight
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
        self._console_calls = CallLimiter(
            config.console_calls_per_window, config.console_window_s, time.monotonic
        )

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
            call.prompt_estimate = sum(len(s) for s in request.inputs) // 4 + 1
            await self._prepare(call, context, kind="embedding", max_tokens=None)
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
            await self._finish(call, strict=True)  # recorded before the answer leaves
            return inference_pb2.EmbeddingsResponse(
                model=call.model,
                data=[inference_pb2.EmbeddingVector(values=e.values) for e in reply.embeddings],
                usage=common_pb2.Usage(prompt_tokens=reply.prompt_tokens),
                cost=self._cost_pb(call),
            )

    async def ListModels(self, request, context) -> inference_pb2.ListModelsResponse:
        call = self._begin(context, "models.list", "")
        async with self._refusals_recorded(call):
            call.principal = await self._authenticate(context)
            return inference_pb2.ListModelsResponse(models=self._visible_models(call.principal))

    async def GetModel(self, request, context) -> common_pb2.ModelInfo:
        call = self._begin(context, "models.get", request.id)
        async with self._refusals_recorded(call):
            self._check_model_id(call)
            call.principal = await self._authenticate(context)
            for info in self._visible_models(call.principal, include_retired=True):
                if info.id == request.id:
                    return info
            raise NotFound(
                f"The model '{request.id}' does not exist or your key may not use it. "
                "List the available models with GET /v1/models.",
                param="model",
            )

    async def GetConsoleSummary(self, request, context) -> inference_pb2.ConsoleSummary:
        """The console's data: an admin key sees every tenant, a tenant key only its own.

        Limited per key (CallLimiter), at most MAX_POINTS buckets per series (build_summary),
        and built in a thread: its cost grows with the records, and the event loop serves
        every other request and the health probes.
        """
        call = self._begin(context, "console.summary", "")
        async with self._refusals_recorded(call):
            call.principal = principal = await self._authenticate(context)
            try:
                self._console_calls.acquire(principal.key_id, "the console summary")
            except RateLimited:
                metrics.observe_ratelimit_refusal(principal.tenant, "console")
                raise
            text = await asyncio.to_thread(
                _summary_json,
                self._observations.records(),  # a copy, taken on the loop
                self._alerts.firing() if self._alerts is not None else [],
                None if principal.admin else principal.tenant,
                window_s=min(max(request.window_seconds or 3600, 60), 7 * 86400),
                bucket_s=min(max(request.bucket_seconds or 60, 1), 3600),
            )
            return inference_pb2.ConsoleSummary(json=text)

    # -- pipeline -----------------------------------------------------------------------

    async def _complete(
        self, action: str, gen: worker_pb2.GenerateRequest, prompt: str, user: str, context
    ) -> AsyncIterator[inference_pb2.CompletionChunk]:
        call = self._begin(context, action, gen.model)
        async with self._tracked(call):
            call.prompt_estimate = len(prompt) // 4 + 1  # ~4 characters per token
            max_tokens = max(0, gen.sampling.max_tokens)
            await self._prepare(call, context, kind="chat", max_tokens=max_tokens)
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
                self._pool,
                gen,
                timeout=self._timeout(context),
                weight=self._weight(call),
                on_dispatch=lambda: setattr(call, "dispatched", True),
            ):
                chunk = self._to_chunk(call, resp)
                if call.settled:
                    # Usage and audit are on disk before the client sees the end of the answer,
                    # so a router crash right after cannot lose a completed request's record;
                    # a record that cannot be written ends the answer with 503 (fail closed).
                    call.outcome, call.status = "ok", 200
                    await self._finish(call, strict=True)
                yield chunk
            call.outcome, call.status = "ok", 200

    def _begin(self, context, action: str, model: str) -> Call:
        md = _metadata(context)
        request_id = md.get("x-request-id", "")
        if not (0 < len(request_id) <= 128 and request_id.isprintable()):
            request_id = uuid.uuid4().hex
        if len(model) <= MAX_MODEL_ID_CHARS:
            return Call(action=action, model=model, request_id=request_id)
        # Clipped at once: the record, the logs and every message see only this much of it.
        return Call(
            action=action, model=_clip(model), request_id=request_id, model_chars=len(model)
        )

    @staticmethod
    def _check_model_id(call: Call) -> None:
        if call.model_chars:
            raise InvalidRequest(
                f"The model id is {call.model_chars} characters long; model ids are at most "
                f"{MAX_MODEL_ID_CHARS}. List the available models with GET /v1/models.",
                code="invalid_model",
                param="model",
            )

    @contextlib.asynccontextmanager
    async def _refusals_recorded(self, call: Call) -> AsyncIterator[Call]:
        """For reads (models, console): a refusal is audited; a success is not recorded."""
        try:
            yield call
        except MeshError as err:
            call.outcome = "refused" if err.http_status < 500 else "error"
            call.status, call.reason = err.http_status, f"{err.code}: {err.message}"
            try:
                await self._access.record(call.to_record())
            except Exception:  # noqa: BLE001 - the refusal itself goes out regardless
                log.error("could not record the refusal %s", call.request_id, exc_info=True)
            raise

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
            if _computed_before(call, err):
                # A worker computed the prompt (and maybe streamed tokens) before the failure:
                # billed what it did, audited with the error.
                self._settle(call, None)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # A cancel after the final chunk (the edge closing the call) changes nothing.
            if not call.settled:
                call.outcome, call.status, call.reason = "cancelled", 499, "client cancelled"
                if call.num_streamed or call.dispatched:
                    # A worker had the request: its prompt was (being) computed, so it is
                    # billed, with what was streamed, even before the first token.
                    self._settle(call, None)
            raise
        finally:
            await self._finish(call)

    async def _prepare(self, call: Call, context, *, kind: str, max_tokens: int | None) -> None:
        """Everything before the request's own work; `max_tokens` None: no output (embed)."""
        self._check_model_id(call)
        call.principal = await self._authenticate(context)
        tracing.set_attributes({tracing.LLMAAS_TENANT: call.principal.tenant})
        self._access.ensure_recording()  # 503 while usage/audit writes fail
        self._resolve_model(call, kind)
        self._authorise(call)
        self._check_served(call)
        output = 0 if max_tokens is None else self._output_estimate(call, max_tokens)
        try:
            call.admission = await self._access.admit(
                call.principal, call.model, call.prompt_estimate + output
            )
        except (RateLimited, QuotaExceeded) as err:
            metrics.observe_ratelimit_refusal(call.principal.tenant, _refusal_reason(err))
            raise
        call.headers.update({k.lower(): v for k, v in call.admission.headers.items()})
        self._hold_budget(call, output)

    def _output_estimate(self, call: Call, max_tokens: int) -> int:
        """Output tokens the rate limiter counts until the real usage replaces them: max_tokens,
        else the rest of the window (what the request may generate), capped by the tier's
        tokens per minute (an unbounded request must not be refused as too large)."""
        if max_tokens:
            return max_tokens
        window = self._window(call)
        if not window:
            return DEFAULT_OUTPUT_ESTIMATE
        output = max(0, window - call.prompt_estimate)
        tier = self._tier(call)
        if tier is not None and tier.tokens_per_minute:
            output = max(0, min(output, tier.tokens_per_minute - call.prompt_estimate))
        return output

    def _hold_budget(self, call: Call, output: int) -> None:
        """Holds the request's estimated cost against the tenant's budget until _finish, so
        the next admission counts what requests in flight will cost."""
        budget = getattr(self._access, "budget", None)
        if budget is None or call.principal is None:
            return
        estimate = cost_eur(TokenCounts(call.prompt_estimate, output), self._prices(call))
        call.hold = budget.hold(call.principal.tenant, estimate)

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

    def _window(self, call: Call) -> int:
        """The model's context window: what its workers enforce, else the catalog's; 0 unknown."""
        return self._pool.context_length(call.worker_model) or (
            call.entry.context_length if call.entry else 0
        )

    async def _check_context_length(
        self, call: Call, gen: worker_pb2.GenerateRequest, context
    ) -> None:
        """400 context_length_exceeded for a prompt that cannot fit the model's window, before
        the security filter judges it (long filler is how clients probe the limit; the filter
        would call it repetition).

        First by its bytes (mesh.prompt_bounds): a prompt whose size proves it cannot fit is
        refused at once, before anything tokenises it (tokenising a long prompt holds a
        worker's GIL for seconds). Tokenising lives on the workers: only a prompt that could
        overflow by its byte count asks one (CountTokens, which creates no sequence); short
        prompts take no extra call. A worker that does not answer in time leaves the check to
        Generate's own (the worker refuses with 400 before it creates a sequence): the prompt
        it gets is one the byte bound could not refuse, and a refusal is never a 503."""
        window = self._window(call)
        max_tokens = max(0, gen.sampling.max_tokens)  # 0: up to the window
        if not window:
            return
        self._check_token_floor(call, gen, window, max_tokens)
        if not _could_overflow(gen, window, max_tokens):
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
        param = "messages" if gen.WhichOneof("input") == "chat" else "prompt"
        if max_tokens and num_prompt + max_tokens > window:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {window} tokens; your prompt has "
                f"{num_prompt} tokens and max_tokens asks for {max_tokens}. "
                "Shorten the prompt or lower max_tokens.",
                param=param if num_prompt >= window else "max_tokens",
            )
        if not max_tokens and num_prompt >= window:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {window} tokens; your prompt has "
                f"{num_prompt} tokens, which leaves no room to generate. Shorten the prompt.",
                param=param,
            )

    def _check_token_floor(
        self, call: Call, gen: worker_pb2.GenerateRequest, window: int, max_tokens: int
    ) -> None:
        """Refuses a prompt whose bytes prove it has too many tokens (never tokenises)."""
        if gen.WhichOneof("input") == "chat":
            texts, param = [m.content for m in gen.chat.messages], "messages"
        else:
            texts, param = [gen.prompt], "prompt"
        max_bytes, max_runs = self._token_limits(call.worker_model)
        if max_bytes <= 0 and max_runs <= 0:
            return  # no sound bound for this vocabulary: the workers count (no guess)
        floor = token_floor(texts, max_token_bytes=max_bytes, max_token_runs=max_runs)
        call.prompt_estimate = max(call.prompt_estimate, floor.tokens)
        if floor.tokens < window and floor.tokens + max_tokens <= window:
            return
        size = f"your prompt has at least {floor.tokens} tokens ({floor.num_bytes} bytes)"
        if floor.tokens >= window or not max_tokens:
            raise ContextLengthExceeded(
                f"This model's maximum context length is {window} tokens; {size}, which "
                "leaves no room to generate. Shorten the prompt.",
                param=param,
            )
        raise ContextLengthExceeded(
            f"This model's maximum context length is {window} tokens; {size} and max_tokens "
            f"asks for {max_tokens}. Shorten the prompt or lower max_tokens.",
            param="max_tokens",
        )

    def _token_limits(self, worker_model: str) -> tuple[int, int]:
        """Bytes and runs one token of `worker_model` may hold, for the floor: what its
        workers said in Info (the loosest of them; a 0, no sound bound, from any drops that
        bound), the configured defaults for a worker that did not say or when none did."""
        defaults = (self._config.max_token_bytes, self._config.max_token_runs)
        said = [
            (
                info.max_token_bytes if info.HasField("max_token_bytes") else defaults[0],
                info.max_token_runs if info.HasField("max_token_runs") else defaults[1],
            )
            for w in self._pool.workers()
            if (info := w.models.get(worker_model)) is not None
        ]
        if not said:
            return defaults
        return tuple(  # type: ignore[return-value]
            0 if any(v <= 0 for v in values) else max(values) for values in zip(*said, strict=True)
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
        if resp.usage.prompt_tokens:  # said early: billed if the stream breaks off later
            call.reported_prompt = resp.usage.prompt_tokens
            call.reported_system = resp.usage.system_tokens
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
        """Token counts, cost and energy; without usage (cancelled, or failed before the
        worker's final message) from what was streamed: the prompt as the worker reported it,
        else the router's estimate."""
        if usage is None:
            usage = common_pb2.Usage(
                prompt_tokens=call.reported_prompt or call.prompt_estimate,
                completion_tokens=call.num_streamed,
                system_tokens=call.reported_system if call.reported_prompt else 0,
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

    def _tier(self, call: Call) -> Tier | None:
        """The caller's billing tier, where the accounts know tiers (None otherwise)."""
        tier_of = getattr(self._access, "tier", None)
        if tier_of is None or call.principal is None:
            return None
        return tier_of(call.principal.tier)

    def _weight(self, call: Call) -> float:
        """The tenant's fair-queue weight (its billing tier's `weight`; 1 without tiers)."""
        tier = self._tier(call)
        return 1.0 if tier is None else float(max(1, tier.weight))

    def _timeout(self, context) -> float:
        remaining = context.time_remaining()
        limit = self._config.request_timeout_s
        return limit if remaining is None else max(0.001, min(remaining, limit))

    async def _finish(self, call: Call, *, strict: bool = False) -> None:
        """Releases the admission and the budget hold, writes usage and audit (once).

        A failed write is logged at ERROR (the accounts then answer 503 to later requests,
        see `ensure_recording`); with `strict` (an answer not yet complete) it also ends this
        request with 503, so nothing is served unbilled or unaudited.
        """
        if call.recorded:
            return
        call.recorded = True
        record = call.to_record()
        try:  # first, without awaiting: a cancellation below must not lose the metrics
            self._observe(call)
        except Exception:  # noqa: BLE001 - metrics must never change the answer
            log.exception("could not observe request %s", call.request_id)
        failed = False
        try:
            if call.admission is not None and call.principal is not None:
                await self._access.release(call.principal, call.admission, record)
            await self._access.record(record)
        except Exception:  # noqa: BLE001 - reported below, never swallowed silently
            failed = True
            log.error(
                "could not record usage/audit of request %s (tenant %s, %s, %s tokens in, "
                "%s out): %s",
                call.request_id,
                call.principal.tenant if call.principal else "-",
                record.outcome,
                record.input_tokens,
                record.output_tokens,
                "answer refused (503)" if strict else "answer already decided",
                exc_info=True,
            )
        finally:
            if call.hold is not None:  # after record(): the real cost is in the spend now
                self._access.budget.release(call.hold)
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
        if failed and strict:
            raise Unavailable(
                "The request could not be recorded for billing and audit, so its answer was "
                "withheld. Retry in a few seconds.",
                code=AUDIT_UNAVAILABLE,
                retry_after=5,
            )

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
        return model_info(entry, self._catalog.lifecycle(entry.id, self._today()), worker_info)


def _summary_json(records, alerts, tenant: str | None, **kw) -> str:
    """build_summary + json.dumps: run in a thread (proportional to the records)."""
    return json.dumps(build_summary(records, alerts, tenant, **kw))


def _clip(text: str, limit: int = RECORDED_CHARS) -> str:
    """The start of an over-long client string, with how long it was."""
    return f"{text[:limit]}… ({len(text)} chars)"


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


def _computed_before(call: Call, err: MeshError) -> bool:
    """Whether a worker computed something for a request that failed with `err`: tokens were
    streamed, or it was dispatched and failed with a server error other than "no worker
    could take it" (every try unreachable). A worker's 4xx refusal (e.g. its own context
    check) comes before its sequence exists: nothing computed, nothing billed."""
    if call.settled or call.recorded:
        return False
    if call.num_streamed:
        return True
    return call.dispatched and err.http_status >= 500 and err.code != "model_unavailable"


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
