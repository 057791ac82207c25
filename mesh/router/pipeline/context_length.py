"""Request validation: 400 context_length_exceeded for a prompt that cannot fit the model's
window, before the security filter judges it (long filler is how clients probe the limit;
the filter would call it repetition).

The rule is mesh.prompt_bounds.fits (prompt + max_tokens within the window; max_tokens 0:
room for one token), the one the worker's engine applies too. First by its bytes
(mesh.prompt_bounds): a prompt whose size proves it cannot fit is refused at once, before
anything tokenises it (tokenising a long prompt holds a worker's GIL for seconds).
Tokenising lives on the workers: only a prompt that could overflow by its byte count asks one
(CountTokens, which creates no sequence); short prompts take no extra call. A worker that
does not answer in time leaves the check to Generate's own (the worker refuses with 400
before it creates a sequence): a refusal is never a 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc

from mesh import tracing
from mesh.pb import worker_pb2
from mesh.prompt_bounds import check_fits, token_floor
from mesh.router.pipeline.call import Call, timeout
from mesh.router.workers import WorkerPool

log = logging.getLogger(__name__)

# A worker counts the prompt's tokens only when its UTF-8 bytes (every token covers at least
# one byte) + max_tokens come within this many tokens of the window: room for the chat
# template's markup and default system prompt, plus some per message.
TEMPLATE_MARGIN_TOKENS = 64
MESSAGE_MARGIN_TOKENS = 16
COUNT_TOKENS_TIMEOUT_S = 2.0


def could_overflow(gen: worker_pb2.GenerateRequest, window: int, max_tokens: int) -> bool:
    """Whether prompt + max_tokens might not fit `window` (cheap, never a false no): a token
    covers at least one UTF-8 byte, so the byte count bounds the tokens of the text; the
    margins bound what the chat template adds."""
    if gen.WhichOneof("input") == "chat":
        messages = gen.chat.messages
        num_bytes = sum(
            len(m.role.encode()) + len(m.name.encode()) + len(m.content.encode()) for m in messages
        )
        # Tool definitions and calls are rendered into the prompt too.
        num_bytes += sum(
            len(c.id.encode()) + len(c.name.encode()) + len(c.arguments.encode())
            for m in messages
            for c in m.tool_calls
        )
        num_bytes += sum(
            len(t.name.encode()) + len(t.description.encode()) + len(t.parameters.encode())
            for t in gen.chat.options.tools
        )
        margin = TEMPLATE_MARGIN_TOKENS + MESSAGE_MARGIN_TOKENS * len(messages)
    else:
        num_bytes, margin = len(gen.prompt.encode()), TEMPLATE_MARGIN_TOKENS
    return num_bytes + max_tokens >= window - margin


def _texts(gen: worker_pb2.GenerateRequest) -> tuple[list[str], str]:
    if gen.WhichOneof("input") == "chat":
        return [m.content for m in gen.chat.messages], "messages"
    return [gen.prompt], "prompt"


class ContextCheck:
    """The context-length check of one generation request (floor, then CountTokens)."""

    def __init__(
        self,
        pool: WorkerPool,
        window: Callable[[Call], int],
        default_limits: tuple[int, int],
        request_timeout_s: float,
    ) -> None:
        self._pool, self._window = pool, window
        self._defaults, self._request_timeout_s = default_limits, request_timeout_s

    async def __call__(self, call: Call, gen: worker_pb2.GenerateRequest, context) -> None:
        window = self._window(call)
        max_tokens = max(0, gen.sampling.max_tokens)  # 0: up to the window
        if not window:
            return
        self.check_floor(call, gen, window, max_tokens)
        if not could_overflow(gen, window, max_tokens):
            return
        reply = await self._count_tokens(call, gen, context)
        if reply is None:
            return
        window, num_prompt = reply.context_length or window, reply.prompt_tokens
        call.prompt_estimate = num_prompt  # exact now (billed if cancelled mid-stream)
        size = f"your prompt has {num_prompt} tokens"
        check_fits(window, num_prompt, max_tokens, size, _texts(gen)[1], counted=True)

    def check_floor(
        self, call: Call, gen: worker_pb2.GenerateRequest, window: int, max_tokens: int
    ) -> None:
        """Refuses a prompt whose bytes prove it has too many tokens (never tokenises)."""
        texts, param = _texts(gen)
        max_bytes, max_runs = self.token_limits(call.served_name)
        if max_bytes <= 0 and max_runs <= 0:
            return  # no sound bound for this vocabulary: the workers count (no guess)
        floor = token_floor(texts, max_token_bytes=max_bytes, max_token_runs=max_runs)
        call.prompt_estimate = max(call.prompt_estimate, floor.tokens)
        size = f"your prompt has at least {floor.tokens} tokens ({floor.num_bytes} bytes)"
        check_fits(window, floor.tokens, max_tokens, size, param, counted=False)

    def token_limits(self, served_name: str) -> tuple[int, int]:
        """Bytes and runs one token of `served_name` may hold, for the floor: what its
        workers said in Info (the loosest of them; a 0, no sound bound, from any drops that
        bound), the configured defaults for a worker that did not say or when none did."""
        defaults = self._defaults
        said = [
            (
                info.max_token_bytes if info.HasField("max_token_bytes") else defaults[0],
                info.max_token_runs if info.HasField("max_token_runs") else defaults[1],
            )
            for w in self._pool.workers()
            if (info := w.models.get(served_name)) is not None
        ]
        if not said:
            return defaults
        return tuple(  # type: ignore[return-value]
            0 if any(v <= 0 for v in values) else max(values) for values in zip(*said, strict=True)
        )

    async def _count_tokens(
        self, call: Call, gen: worker_pb2.GenerateRequest, context
    ) -> worker_pb2.CountTokensResponse | None:
        """A worker's exact count, or None (no worker, or it did not answer in time)."""
        worker = self._pool.pick(call.served_name)
        if worker is None:
            return None
        count = worker_pb2.GenerateRequest()
        count.CopyFrom(gen)
        count.request_id, count.model = call.request_id, call.served_name
        count.tenant = call.principal.tenant
        try:
            return await worker.stub.CountTokens(
                count,
                timeout=min(COUNT_TOKENS_TIMEOUT_S, timeout(context, self._request_timeout_s)),
                metadata=tracing.inject_metadata(),
            )
        except grpc.aio.AioRpcError as err:
            log.info(
                "CountTokens on %s failed (%s): the worker checks the length itself",
                worker.address,
                err.code().name,
            )
            return None
