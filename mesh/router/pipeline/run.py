"""The request pipeline, in order (each step is its own module):

  call.check_model_id  an over-long model id is refused before anything else
  authenticate         who is calling (then: usage and audit must be writable, else 503)
  resolve.Models       which model, may the caller use it, does a healthy worker serve it
  admit.Admit          the tier's rate limits; the estimated cost held against the budget
  context_length       a prompt that cannot fit is refused (by bytes first, then counted)
  screen.Screen        the security filter (fails closed)
  generation           place on a worker and generate (failover before the first token)
  settle.Settle        usage → tokens, cost, energy; usage, audit and metrics written once

`Pipeline` runs them for a chat/text completion (`complete`) and an embedding (`embed`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from mesh import metrics, tracing
from mesh.pb import common_pb2, inference_pb2, worker_pb2
from mesh.pricing import Prices
from mesh.router.access import AccessControl
from mesh.router.config import RouterConfig
from mesh.router.content import ContentRecorder
from mesh.router.generation import generate, run_embed
from mesh.router.pipeline.admit import Admit, fair_weight
from mesh.router.pipeline.authenticate import authenticate
from mesh.router.pipeline.call import Call, begin, check_model_id, initial_metadata, timeout
from mesh.router.pipeline.context_length import ContextCheck
from mesh.router.pipeline.resolve import Models
from mesh.router.pipeline.screen import Screen
from mesh.router.pipeline.settle import Settle, cost_pb
from mesh.router.workers import WorkerPool

FINISHED = common_pb2.FINISH_REASON_UNSPECIFIED
# Trace attribute gen_ai.operation.name per action (GenAI semantic conventions).
OPERATIONS = {
    "chat.completions": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}


@dataclass(frozen=True, slots=True)
class Steps:
    """The pipeline's steps, built once per router (see `Pipeline.build`)."""

    models: Models
    admit: Admit
    context: ContextCheck
    screen: Screen
    settle: Settle


class Pipeline:
    """Runs a generation request through the steps, in order."""

    def __init__(
        self,
        config: RouterConfig,
        pool: WorkerPool,
        access: AccessControl,
        steps: Steps,
        content_log: ContentRecorder | None,
    ) -> None:
        self._config, self._pool, self._access = config, pool, access
        self._steps, self._content_log = steps, content_log

    async def complete(
        self, action: str, gen: worker_pb2.GenerateRequest, prompt: str, user: str, context
    ) -> AsyncIterator[inference_pb2.CompletionChunk]:
        """A chat or text completion: the chunks as the worker streams them."""
        call, steps = begin(context, action, gen.model), self._steps
        async with steps.settle.tracked(call):
            call.prompt_estimate = len(prompt) // 4 + 1  # ~4 characters per token
            choices = max(1, gen.sampling.n)  # each its own sequence; the prompt is shared
            await self._prepare(
                call,
                context,
                kind="chat",
                max_tokens=max(0, gen.sampling.max_tokens),
                choices=choices,
            )
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
            await steps.context(call, gen, context)  # validation, before the filter
            await steps.screen(call, prompt, user, gen)  # tool parts as typed fields
            await context.send_initial_metadata(initial_metadata(call))
            gen.request_id, gen.tenant = call.request_id, call.principal.tenant
            gen.model = call.served_name  # the weights the operator mapped this id to
            async for resp in generate(
                self._pool,
                gen,
                timeout=timeout(context, self._config.request_timeout_s),
                weight=fair_weight(self._access, call.principal),
                on_dispatch=lambda: setattr(call, "dispatched", True),
            ):
                choices -= resp.finish_reason != FINISHED
                chunk = self._to_chunk(call, resp, last=choices == 0)
                if call.settled:
                    # Usage and audit are on disk before the client sees the end of the answer,
                    # so a router crash right after cannot lose a completed request's record;
                    # a record that cannot be written ends the answer with 503 (fail closed).
                    call.outcome, call.status = "ok", 200
                    await steps.settle.finish(call, strict=True)
                yield chunk
            call.outcome, call.status = "ok", 200

    async def embed(
        self, request: inference_pb2.EmbeddingsRequest, context
    ) -> inference_pb2.EmbeddingsResponse:
        """Embeddings: no context check nor filter (no output, nothing generated)."""
        call, steps = begin(context, "embeddings", request.model), self._steps
        async with steps.settle.tracked(call):
            call.prompt_estimate = sum(len(s) for s in request.inputs) // 4 + 1
            await self._prepare(call, context, kind="embedding", max_tokens=None)
            tracing.set_attributes(tracing.genai_request_attributes("embeddings", call.model))
            await context.send_initial_metadata(initial_metadata(call))
            embed = worker_pb2.EmbedRequest(
                request_id=call.request_id, model=call.served_name, inputs=request.inputs
            )
            reply = await run_embed(
                self._pool,
                embed,
                timeout=timeout(context, self._config.request_timeout_s),
                tenant=call.principal.tenant,
                weight=fair_weight(self._access, call.principal),
            )
            steps.settle.settle(call, common_pb2.Usage(prompt_tokens=reply.prompt_tokens))
            call.outcome, call.status = "ok", 200
            await steps.settle.finish(call, strict=True)  # recorded before the answer leaves
            return inference_pb2.EmbeddingsResponse(
                model=call.model,
                data=[inference_pb2.EmbeddingVector(values=e.values) for e in reply.embeddings],
                usage=common_pb2.Usage(prompt_tokens=reply.prompt_tokens),
                cost=cost_pb(call),
            )

    async def _prepare(
        self, call: Call, context, *, kind: str, max_tokens: int | None, choices: int = 1
    ) -> None:
        """Everything before the request's own work; `max_tokens` None: no output (embed);
        `choices` (n) multiplies the output the limits and the budget hold count."""
        check_model_id(call)
        call.principal = await authenticate(self._access, context)
        tracing.set_attributes({tracing.LLMAAS_TENANT: call.principal.tenant})
        self._access.ensure_recording()  # 503 while usage/audit writes fail
        self._steps.models.resolve(call, kind)
        self._steps.models.authorise(call)
        self._steps.models.check_served(call)
        await self._steps.admit(call, max_tokens, choices=choices)

    def _to_chunk(
        self, call: Call, resp: worker_pb2.GenerateResponse, *, last: bool
    ) -> inference_pb2.CompletionChunk:
        """One worker message as the client's chunk; the `last` one (every choice finished)
        settles the call with the usage of all choices."""
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
            index=resp.index,
            logprobs=resp.logprobs,
            tool_calls=resp.tool_calls,
        )
        if resp.finish_reason != FINISHED:
            reason = common_pb2.FinishReason.Name(resp.finish_reason)
            call.finish_reasons.append(reason.removeprefix("FINISH_REASON_").lower())
        if last:
            self._steps.settle.settle(call, resp.usage)
            call.settled = True
            chunk.usage.CopyFrom(resp.usage)
            chunk.cost.CopyFrom(cost_pb(call))
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


def prices_of(config: RouterConfig) -> Callable[[Call], Prices]:
    """The prices a call is billed at: its catalog entry's, else the configured ones."""

    def prices(call: Call) -> Prices:
        return Prices.for_entry(call.entry, config.prices_for(call.model))

    return prices
