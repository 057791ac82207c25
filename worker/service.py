"""WorkerServicer: the Worker gRPC service over the async engine, served by mesh.rpc's bootstrap."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import dataclass

import grpc
from tokenizers import Tokenizer as HFTokenizer

from mesh import tracing
from mesh.pb import common_pb2, worker_pb2, worker_pb2_grpc
from mesh.rpc import add_port, build_server, set_serving
from worker.async_engine import AsyncLLMEngine, LoadSnapshot
from worker.chat_tools import ChatTools, uses_tools
from worker.engine import Prompt
from worker.errors import ModelNotFound, RequestError
from worker.generate_options import Echo, LogprobTexts, constrain
from worker.outputs import StepOutput
from worker.sampling_params import SamplingDefaults, SamplingParams
from worker.sequence import FinishReason
from worker.template_switches import with_switches
from worker.token_bounds import VocabLimits, vocab_limits

log = logging.getLogger(__name__)

SERVICE_NAME = worker_pb2.DESCRIPTOR.services_by_name["Worker"].full_name

# Exit status of a worker whose engine is down for good (EX_SOFTWARE): the launcher restarts
# it. The exit waits FATAL_EXIT_GRACE_S so that callers get their UNAVAILABLE first.
FATAL_EXIT_CODE = 70
FATAL_EXIT_GRACE_S = 1.0

FINISH_REASON_TO_PB = {
    FinishReason.STOP: common_pb2.FINISH_REASON_STOP,
    FinishReason.LENGTH: common_pb2.FINISH_REASON_LENGTH,
    FinishReason.CANCELLED: common_pb2.FINISH_REASON_CANCELLED,
}


@dataclass(slots=True, frozen=True)
class ServedModel:
    model_id: str
    context_length: int
    worker_id: str
    max_num_seqs: int
    device: str
    dtype: str
    sampling_defaults: SamplingDefaults = SamplingDefaults()


async def watch_load(
    load_report: Callable[[], worker_pb2.LoadReport], interval_ms: int
) -> AsyncIterator[worker_pb2.LoadReport]:
    """The live load, sent only when it changes, polled every interval (>= 50 ms)."""
    interval_s = max(interval_ms or 500, 50) / 1000
    last = None
    while True:
        report = load_report()
        if report != last:
            yield report
            last = report
        await asyncio.sleep(interval_s)


class WorkerServicer(worker_pb2_grpc.WorkerServicer):
    def __init__(self, engine: AsyncLLMEngine, served: ServedModel) -> None:
        self.engine = engine
        self.served = served
        tokenizer = getattr(getattr(engine, "engine", None), "tokenizer", None)
        self._logprob_texts = LogprobTexts(tokenizer, lambda: engine.engine.grammars)

    async def Generate(
        self, request: worker_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.GenerateResponse]:
        # Errors (RequestError, ModelNotFound, Draining, EngineFailed) reach the caller as
        # statuses through the error interceptor of mesh.rpc.build_server.
        self._check_model(request.model)
        params = SamplingParams.from_pb(request.sampling, self.served.sampling_defaults)
        tools = self._chat_tools(request)
        if tools is not None:  # tool_choice's grammar; the answer's calls parsed below
            params = await tools.constrain(params, lambda: self.engine.engine.grammars)
        params = await constrain(params, request, lambda: self.engine.engine.grammars)
        echo = Echo(request, params)
        if params.logprobs:
            await self._logprob_texts.ready()
        calls = tools.answer_stream() if tools is not None else None
        stream = self.engine.generate(
            request.request_id or uuid.uuid4().hex,
            _prompt_of(request, tools),
            params,
            request.tenant,
        )
        submitted, parent, first_token = time.monotonic(), tracing.current_context(), None
        async with aclosing(stream):
            async for output in stream:
                if first_token is None and output.num_tokens:
                    first_token = time.monotonic()
                if output.usage is not None:  # before the last yield: the caller may cancel
                    self._trace(parent, submitted, first_token, output)
                response = output_to_pb(echo.apply(output))
                self._logprob_texts.fill(response, output)
                yield response if calls is None else calls.apply(response)

    def _trace(self, parent, submitted: float, first_token: float | None, last: StepOutput) -> None:
        """The queue / prefill / decode spans of one sequence, children of its Generate span."""
        if parent is None or last.scheduled_at is None or first_token is None:
            return  # tracing off, or cancelled before its first token
        attrs = {
            tracing.GEN_AI_REQUEST_MODEL: self.served.model_id,
            tracing.LLMAAS_WORKER: self.served.worker_id,
        }
        if last.usage is not None:
            tracing.set_attributes(
                {
                    **attrs,
                    tracing.GEN_AI_USAGE_INPUT_TOKENS: last.usage.prompt_tokens,
                    tracing.GEN_AI_USAGE_OUTPUT_TOKENS: last.usage.completion_tokens,
                }
            )
        tracing.record_phases(
            parent,
            submitted=submitted,
            scheduled=last.scheduled_at,
            first_token=first_token,
            finished=time.monotonic(),
            attributes=attrs,
        )

    async def CountTokens(
        self, request: worker_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.CountTokensResponse:
        """Tokenises as Generate would; creates no sequence and counts nothing."""
        self._check_model(request.model)
        # off the event loop; a prompt that cannot fit is refused before tokenising
        prompt = _prompt_of(request, self._chat_tools(request))
        num_prompt, num_system = await self.engine.count_prompt_tokens(prompt)
        return worker_pb2.CountTokensResponse(
            prompt_tokens=num_prompt,
            context_length=self.engine.engine.context_length,
            system_tokens=num_system,
        )

    async def Embed(
        self, request: worker_pb2.EmbedRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.EmbedResponse:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"'{self.served.model_id}' is a chat model; embeddings are served by embedding "
            "workers (e.g. all-minilm:22m).",
        )

    async def Info(
        self, request: worker_pb2.InfoRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.InfoResponse:
        served = self.served
        limits = await self._vocab_limits()
        model = common_pb2.ModelInfo(
            id=served.model_id,
            context_length=served.context_length,
            served=True,
            kind="chat",
            max_token_bytes=limits.max_token_bytes,
            max_token_runs=limits.max_token_runs,
        )
        return worker_pb2.InfoResponse(
            worker_id=served.worker_id,
            models=[model],
            max_num_seqs=served.max_num_seqs,
            device=served.device,
            dtype=served.dtype,
        )

    _limits: asyncio.Future[VocabLimits] | None = None

    async def _vocab_limits(self) -> VocabLimits:
        """The vocabulary's token limits for the router's prompt-size floor (Info), computed
        once in a thread (a pass over the vocabulary, seconds on a busy machine); calls
        meanwhile wait for that one computation, and one that times out leaves it running
        for the next (the router's probe would never see it done otherwise)."""
        if self._limits is None:
            self._limits = asyncio.ensure_future(self._compute_limits())
        return await asyncio.shield(self._limits)

    async def _compute_limits(self) -> VocabLimits:
        """0s when the tokenizer is not a `tokenizers` one or has no sound bound."""
        tok = getattr(getattr(getattr(self.engine, "engine", None), "tokenizer", None), "tok", None)
        if not isinstance(tok, HFTokenizer):
            return VocabLimits(0, 0)
        try:
            return await asyncio.to_thread(vocab_limits, tok)
        except Exception:  # noqa: BLE001 - the router then skips the floor
            log.exception("could not compute the vocabulary's token limits")
            return VocabLimits(0, 0)

    async def GetLoad(
        self, request: worker_pb2.LoadRequest, context: grpc.aio.ServicerContext
    ) -> worker_pb2.LoadReport:
        return self._load_report()

    async def WatchLoad(
        self, request: worker_pb2.LoadRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[worker_pb2.LoadReport]:
        async for report in watch_load(self._load_report, request.interval_ms):
            yield report

    def _chat_tools(self, request: worker_pb2.GenerateRequest) -> ChatTools | None:
        """A chat with tools: its rendering, grammar and call parsing (worker.chat_tools)."""
        return ChatTools.of(request, self.engine.engine.tokenizer) if uses_tools(request) else None

    def _check_model(self, requested: str) -> None:
        if requested and requested != self.served.model_id:
            raise ModelNotFound(requested, self.served.model_id)

    def _load_report(self) -> worker_pb2.LoadReport:
        return load_to_pb(
            self.engine.load(),
            self.served.worker_id,
            self.served.max_num_seqs,
            self.engine.is_draining,
        )


# -- conversions (pure) ---------------------------------------------------------------


def _prompt_of(request: worker_pb2.GenerateRequest, tools: ChatTools | None = None) -> Prompt:
    if tools is not None:  # chat_template_kwargs / reasoning_effort ride along
        return with_switches(tools.messages, request.chat.options)
    if request.WhichOneof("input") == "prompt":
        return request.prompt
    if request.WhichOneof("input") == "chat":
        messages = [
            {"role": m.role, "content": m.content} | ({"name": m.name} if m.name else {})
            for m in request.chat.messages
        ]
        return with_switches(messages, request.chat.options)
    raise RequestError("The request has neither chat messages nor a prompt.", "messages")


def output_to_pb(output: StepOutput) -> worker_pb2.GenerateResponse:
    response = worker_pb2.GenerateResponse(
        text=output.text,
        num_tokens=output.num_tokens,
        reasoning_text=output.reasoning_text,
        index=output.index,
    )
    if output.finish_reason is not None:
        response.finish_reason = FINISH_REASON_TO_PB[output.finish_reason]
    if output.usage is not None:
        usage = output.usage
        response.usage.CopyFrom(
            common_pb2.Usage(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                system_tokens=usage.system_tokens,
                cached_tokens=usage.cached_tokens,
            )
        )
    return response


def load_to_pb(
    load: LoadSnapshot, worker_id: str, max_num_seqs: int, draining: bool
) -> worker_pb2.LoadReport:
    return worker_pb2.LoadReport(
        worker_id=worker_id,
        num_running=load.num_running,
        num_waiting=load.num_waiting,
        kv_cache_usage=load.kv_cache_usage,
        max_num_seqs=max_num_seqs,
        draining=draining,
        num_generated_tokens_total=load.num_generated_tokens_total,
        num_cancelled_total=load.num_cancelled_total,
        num_prefix_cache_hits_total=load.num_prefix_cache_hits_total,
        num_requests_total=load.num_requests_total,
    )


# -- server ---------------------------------------------------------------------------


class WorkerServer:
    """grpc.aio server with the Worker, health and reflection services; drains on stop.

    When the engine is down for good (AsyncLLMEngine.on_fatal), health turns NOT_SERVING and,
    after FATAL_EXIT_GRACE_S, `exit_process(FATAL_EXIT_CODE)` ends the process (os._exit:
    nothing is left to drain) so that the launcher starts a fresh one."""

    def __init__(
        self,
        engine: AsyncLLMEngine,
        served: ServedModel,
        *,
        exit_process: Callable[[int], object] = os._exit,
    ) -> None:
        self.engine = engine
        self.served = served
        self.exit_process = exit_process
        self.failed = asyncio.Event()  # the engine is down; health says NOT_SERVING
        self._tasks: set[asyncio.Task[None]] = set()
        engine.on_fatal = self._engine_down
        # mesh.rpc's bootstrap: with LLMAAS_TLS=1 only the router's certificate may call.
        self.server, self.health = build_server([SERVICE_NAME], role="worker")
        worker_pb2_grpc.add_WorkerServicer_to_server(WorkerServicer(engine, served), self.server)
        self.port = 0

    async def start(self, address: str) -> int:
        """Listens on `address`; raises BindError (an OSError) when it cannot (port in use),
        ConfigError for plain gRPC on a non-loopback host (mesh.rpc.add_port)."""
        host, _, port = address.rpartition(":")
        self.port = add_port(self.server, host, int(port), "worker")
        self.engine.start()
        await self.server.start()
        await set_serving(self.health, [SERVICE_NAME], True)
        return self.port

    def _engine_down(self, error: BaseException) -> None:
        """On the event loop, once the engine is down for good: no more SERVING."""
        log.critical(
            "the engine is down (%s): NOT_SERVING, exiting with %d in %.0fs",
            error,
            FATAL_EXIT_CODE,
            FATAL_EXIT_GRACE_S,
        )
        self.failed.set()
        self.engine.is_draining = True  # load reports say so: the router stops sending
        loop = asyncio.get_running_loop()
        task = loop.create_task(set_serving(self.health, [SERVICE_NAME], False))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        loop.call_later(FATAL_EXIT_GRACE_S, self.exit_process, FATAL_EXIT_CODE)

    async def drain_and_stop(self, timeout_s: float) -> None:
        """Takes no new sequences, lets running ones finish (up to timeout_s), then stops."""
        self.engine.is_draining = True
        await self.health.enter_graceful_shutdown()
        finished = await self.engine.wait_idle(timeout_s)
        if not finished:
            log.warning("drain timeout: cancelling %d sequences", self.engine.num_active)
        await self.server.stop(grace=1.0)
        await self.engine.stop()

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()
