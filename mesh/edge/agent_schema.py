"""The agent fields of a validated request (`mesh.edge.requests`) as router protos:
sampling extensions (n, logprobs, logit_bias, min_p, repetition_penalty, the output
constraint of `response_format`), chat options (tools, tool choice, template switches)
and the tool calls of the conversation's messages."""

from __future__ import annotations

import json
from typing import Any

from mesh.edge import agent_requests as agent
from mesh.edge import requests
from mesh.pb import common_pb2

TOOL_CHOICES = {
    "auto": common_pb2.TOOL_CHOICE_AUTO,
    "none": common_pb2.TOOL_CHOICE_NONE,
    "required": common_pb2.TOOL_CHOICE_REQUIRED,
}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def add_sampling(req: requests._Sampling, sampling: common_pb2.SamplingParams) -> None:
    """The fields both endpoints share, beyond OpenAI's classic ones."""
    sampling.n = req.n if req.n and req.n > 1 else 0  # 0: one choice, as before
    sampling.min_p = req.min_p or 0.0
    if req.repetition_penalty is not None:
        sampling.repetition_penalty = req.repetition_penalty
    for token, bias in (req.logit_bias or {}).items():
        sampling.logit_bias[int(token)] = bias


def add_chat_sampling(
    req: requests.ChatCompletionRequest, sampling: common_pb2.SamplingParams
) -> None:
    sampling.logprobs = bool(req.logprobs)
    sampling.top_logprobs = req.top_logprobs or 0
    constraint = response_constraint(req.response_format)
    if constraint is not None:
        sampling.constraint.CopyFrom(constraint)


def add_completion_sampling(
    req: requests.CompletionRequest, sampling: common_pb2.SamplingParams
) -> None:
    # Legacy completions: `logprobs: k` asks for the chosen token and k alternatives.
    sampling.logprobs = req.logprobs is not None
    sampling.top_logprobs = req.logprobs or 0


def response_constraint(
    fmt: agent.ResponseFormat | None,
) -> common_pb2.OutputConstraint | None:
    """`text`: free; `json_object`: any JSON object; `json_schema`: that schema (always
    enforced by the grammar, `strict` or not: an answer that finishes is valid)."""
    if fmt is None or fmt.type == "text":
        return None
    schema = fmt.json_schema.schema_ if fmt.json_schema is not None else None
    if fmt.type == "json_object" or schema is None:
        return common_pb2.OutputConstraint(json_object=True)
    return common_pb2.OutputConstraint(json_schema=_json(schema))


def chat_options(req: requests.ChatCompletionRequest) -> common_pb2.ChatOptions:
    options = common_pb2.ChatOptions(
        tools=[
            common_pb2.Tool(
                name=t.function.name,
                description=t.function.description or "",
                parameters=_json(t.function.parameters) if t.function.parameters else "",
                strict=bool(t.function.strict),
            )
            for t in req.tools or ()
        ],
        reasoning_effort=req.reasoning_effort or "",
        chat_template_kwargs=_json(req.chat_template_kwargs) if req.chat_template_kwargs else "",
    )
    choice = req.tool_choice if req.tools else None  # without tools: only none/auto, no-ops
    if isinstance(choice, agent.NamedToolChoice):
        options.tool_choice.mode = common_pb2.TOOL_CHOICE_FUNCTION
        options.tool_choice.function_name = choice.function.name
    elif choice is not None:
        options.tool_choice.mode = TOOL_CHOICES[choice]
    if req.parallel_tool_calls is not None:
        options.parallel_tool_calls = req.parallel_tool_calls
    return options


def add_message_calls(msg: requests.ChatMessage, out: common_pb2.ChatMessage) -> None:
    """An assistant turn's tool calls and a tool turn's call id."""
    out.tool_calls.extend(
        common_pb2.ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments)
        for c in msg.tool_calls or ()
    )
    out.tool_call_id = msg.tool_call_id or ""
