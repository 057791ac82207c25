"""A chat request's tools, end to end in the worker: how its prompt is rendered
(worker.tool_prompt), the grammar its tool_choice puts on the answer (worker.tool_choice), and
the parser that turns the answer's calls into ToolCallDeltas (worker.tool_calls).

The worker's Generate and CountTokens use it only for chats that involve tools (offered tools,
a tool_choice, or tool calls / tool messages in the history); other requests never see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from mesh.pb import common_pb2, worker_pb2
from worker.reasoning import OPEN_TAG, prompt_opens_think
from worker.sampling_params import SamplingParams
from worker.template_switches import render_kwargs, with_switches
from worker.tool_calls import ToolCallStream
from worker.tool_choice import tool_format
from worker.tool_prompt import chat_messages, offers_tools, parse_tools


def _reasoning(tokenizer: Any, messages: list[dict[str, Any]]) -> str:
    """How a thinking model's answer starts: "open" when the rendered prompt (template
    switches applied) already opened `<think>` (R1-style), "optional" when the model may
    write one, "" for other models."""
    source = getattr(tokenizer, "chat_template", None) or ""
    if OPEN_TAG not in source:
        return ""
    try:
        kwargs = render_kwargs(messages, getattr(tokenizer, "template", None))
        text = tokenizer.apply_chat_template(messages, True, **kwargs)
    except Exception:  # noqa: BLE001 - the engine reports a template error when it renders
        return "optional"
    return "open" if prompt_opens_think(text) else "optional"


def uses_tools(request: worker_pb2.GenerateRequest) -> bool:
    if request.WhichOneof("input") != "chat":
        return False
    chat = request.chat
    return (
        bool(chat.options.tools)
        or chat.options.tool_choice.mode
        in (common_pb2.TOOL_CHOICE_REQUIRED, common_pb2.TOOL_CHOICE_FUNCTION)
        or any(m.tool_calls or m.tool_call_id or m.role == "tool" for m in chat.messages)
    )


@dataclass(frozen=True, slots=True)
class ChatTools:
    messages: list[dict[str, Any]]  # what the engine renders (a TemplatedChat with tools=)
    grammar: dict[str, Any] | None  # the structural tag tool_choice puts on the answer
    parses_calls: bool  # tools were offered: the answer's calls are parsed

    @classmethod
    def of(cls, request: worker_pb2.GenerateRequest, tokenizer: Any) -> ChatTools:
        """Raises InvalidRequest (param tools / tool_choice / response_format)."""
        chat, options = request.chat, request.chat.options
        tools = parse_tools(options.tools)
        offered = tools if offers_tools(options) else []
        parallel = options.parallel_tool_calls if options.HasField("parallel_tool_calls") else True
        constraint = request.sampling.constraint
        response_format = constraint if constraint.WhichOneof("kind") else None
        messages = chat_messages(chat, tokenizer, offered)
        reasoning = _reasoning(tokenizer, with_switches(messages, options)) if tools else ""
        grammar = tool_format(tools, options.tool_choice, parallel, response_format, reasoning)
        return cls(messages, grammar, bool(offered))

    async def constrain(
        self, params: SamplingParams, grammars: Callable[[], Any]
    ) -> SamplingParams:
        """`params` with the tool grammar (it replaces a response_format's, which it
        includes where it applies), compiled off the event loop; `grammars()` is the engine's
        GrammarCache. Unchanged when tool_choice adds no constraint."""
        if self.grammar is None:
            return params
        grammar = self.grammar
        compiled = await asyncio.to_thread(lambda: grammars().structural(grammar, param="tools"))
        return replace(params, grammar=compiled)

    def answer_stream(self) -> ToolCallStream | None:
        return ToolCallStream() if self.parses_calls else None
