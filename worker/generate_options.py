"""The decoding side of a Generate request, between the wire and the engine: its output
constraint compiled (off the event loop), `echo`, and logprobs in the wire's shape.

echo (text completions only) puts the prompt's text before each choice's answer. With
logprobs it is refused (InvalidRequest, param "echo"): the engine computes the logits of
the prompt's last position only, so it has no logprobs for the prompt's tokens to return.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from mesh.pb import worker_pb2
from worker.errors import InvalidRequest
from worker.grammar import GrammarCache
from worker.logprobs import TokenTexts, to_pb
from worker.outputs import StepOutput
from worker.sampling_params import SamplingParams


async def constrain(
    params: SamplingParams,
    request: worker_pb2.GenerateRequest,
    grammars: Callable[[], GrammarCache],
) -> SamplingParams:
    """`params` with the request's OutputConstraint compiled into params.grammar, unless a
    grammar is already there (tool_choice's, which includes the response format). Raises
    InvalidRequest (param "response_format") for a schema / regex / grammar that does not
    compile."""
    constraint = request.sampling.constraint
    if params.grammar is not None or constraint.WhichOneof("kind") is None:
        return params
    compiled = await asyncio.to_thread(lambda: grammars().from_pb(constraint))
    return replace(params, grammar=compiled) if compiled is not None else params


class Echo:
    """Puts the prompt's text before the first output of each choice (request.echo)."""

    def __init__(self, request: worker_pb2.GenerateRequest, params: SamplingParams) -> None:
        self.prompt: str | None = None
        if not request.echo:
            return
        if request.WhichOneof("input") != "prompt":
            raise InvalidRequest("echo is for text completions (a prompt), not chats.", "echo")
        if params.logprobs:
            raise InvalidRequest(
                "echo with logprobs is not supported: the prompt's tokens have no logprobs "
                "here; send one or the other.",
                "echo",
            )
        self.prompt = request.prompt
        self._echoed: set[int] = set()

    def apply(self, output: StepOutput) -> StepOutput:
        if self.prompt is not None and output.index not in self._echoed:
            self._echoed.add(output.index)
            output.text = self.prompt + output.text
        return output


class LogprobTexts:
    """Token ids -> text and exact bytes for logprobs, built on first use (in a thread: it
    reads the whole vocabulary once)."""

    def __init__(self, tokenizer: object, grammars: Callable[[], GrammarCache]) -> None:
        self._tokenizer = tokenizer
        self._grammars = grammars
        self._texts: TokenTexts | None = None

    async def ready(self) -> TokenTexts:
        if self._texts is None:
            token_bytes = await asyncio.to_thread(lambda: self._grammars().info.decoded_vocab)
            self._texts = TokenTexts(self._tokenizer, token_bytes)  # type: ignore[arg-type]
        return self._texts

    def fill(self, response: worker_pb2.GenerateResponse, output: StepOutput) -> None:
        if output.logprobs and self._texts is not None:
            response.logprobs.extend(to_pb(output.logprobs, self._texts))
