"""Tools in the prompt: the offered functions, assistant tool calls and tool results, rendered
through the model's chat template, or through a documented fallback when it has no tool support.

A template supports tools when it reads the `tools` variable and writes calls in the Hermes
format, `<tool_call>{"name": ..., "arguments": ...}</tool_call>` (Qwen2.5, Qwen3, Hermes):
it then gets `tools=[{"type": "function", "function": {...}}]` and the messages as
transformers hands them (assistant `tool_calls` with parsed `arguments`, `tool` messages with
`tool_call_id` and `name`). Any other template (SmolLM2, the default model) gets the fallback:

- a system-prompt section listing the tools (name, description, parameters JSON schema) and
  asking for `<tool_call>\\n{"name": <function-name>, "arguments": <args-json-object>}\\n
  </tool_call>`, after the conversation's own system prompt (Qwen's layout);
- assistant tool calls written in that format after the message's text;
- tool results as a `tool` message (or a `user` one, when the template drops unknown roles)
  wrapped in `<tool_response>...</tool_response>`.

The answer is parsed back by worker.tool_calls, in both cases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2.meta
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from mesh.pb import common_pb2, worker_pb2
from worker.errors import InvalidRequest

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESPONSE_OPEN, RESPONSE_CLOSE = "<tool_response>", "</tool_response>"
NAME_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # OpenAI's rule for function names (plus dots)
MAX_TOOLS = 128  # OpenAI's limit

FALLBACK_HEADER = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
FALLBACK_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One function the model may call; `parameters` is its arguments' JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool = False

    def openai(self) -> dict[str, Any]:
        """The OpenAI / transformers shape templates expect."""
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = self.parameters
        return {"type": "function", "function": function}


class TemplatedChat(list):
    """Chat messages plus extra chat-template variables (`tools=`), for the engine's renderer.

    A list, so it goes everywhere a list of messages goes (worker.engine.Prompt)."""

    def __init__(self, messages: Sequence[Mapping[str, Any]], **template_kwargs: Any) -> None:
        super().__init__(messages)
        self.template_kwargs = template_kwargs


def parse_tools(tools: Sequence[common_pb2.Tool]) -> list[ToolSpec]:
    """The request's tools, checked; raises InvalidRequest(param="tools")."""
    if len(tools) > MAX_TOOLS:
        raise InvalidRequest(f"At most {MAX_TOOLS} tools may be given; got {len(tools)}.", "tools")
    specs, seen = [], set()
    for i, tool in enumerate(tools):
        if not NAME_RE.fullmatch(tool.name):
            raise InvalidRequest(
                f"tools[{i}].function.name must be 1-64 letters, digits, '_', '-' or '.'; "
                f"got {tool.name[:80]!r}.",
                "tools",
            )
        if tool.name in seen:
            raise InvalidRequest(f"Two tools are named {tool.name!r}.", "tools")
        seen.add(tool.name)
        specs.append(ToolSpec(tool.name, tool.description, _parameters(i, tool), tool.strict))
    return specs


def _parameters(i: int, tool: common_pb2.Tool) -> dict[str, Any]:
    if not tool.parameters.strip():
        return {"type": "object", "properties": {}}
    try:
        schema = json.loads(tool.parameters)
    except ValueError as exc:
        raise InvalidRequest(
            f"tools[{i}].function.parameters is not valid JSON: {exc}", "tools"
        ) from None
    if not isinstance(schema, dict):
        raise InvalidRequest(
            f"tools[{i}].function.parameters must be a JSON schema object.", "tools"
        )
    if schema.get("type", "object") != "object":
        raise InvalidRequest(
            f"tools[{i}].function.parameters must describe an object (type: object); got "
            f"type {schema.get('type')!r}.",
            "tools",
        )
    return schema


def offers_tools(options: common_pb2.ChatOptions) -> bool:
    return bool(options.tools) and options.tool_choice.mode != common_pb2.TOOL_CHOICE_NONE


def chat_messages(
    chat: worker_pb2.ChatPrompt, tokenizer: Any, tools: Sequence[ToolSpec] = ()
) -> list[dict[str, Any]]:
    """The messages (and template variables) the engine renders for `chat`; `tools` are the
    ones offered to the model (none for tool_choice `none`)."""
    names = {c.id: c.name for m in chat.messages for c in m.tool_calls}
    source = _template_source(tokenizer)
    if source is not None and template_supports_tools(source):
        messages = [_template_message(m, names) for m in chat.messages]
        if not tools:
            return messages
        return TemplatedChat(messages, tools=[t.openai() for t in tools])
    tool_role = "tool" if source is None or accepts_any_role(source) else "user"
    messages = [_fallback_message(m, tool_role) for m in chat.messages]
    if tools:
        messages = _with_tool_section(messages, tools)
    return messages


def _template_source(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "template", None)
    templates = getattr(template, "templates", None)
    if isinstance(templates, Mapping):  # named templates: `tool_use` renders requests with tools
        return templates.get("tool_use") or templates.get("default")
    return getattr(tokenizer, "chat_template", None)


@lru_cache(maxsize=16)
def template_supports_tools(source: str) -> bool:
    """The template reads `tools` and writes calls in the `<tool_call>` format we parse."""
    try:
        env = ImmutableSandboxedEnvironment(extensions=["jinja2.ext.loopcontrols"])
        names = jinja2.meta.find_undeclared_variables(env.parse(source))
    except TemplateError:
        return False
    return "tools" in names and CALL_OPEN in source


def _raise(message: str) -> None:
    raise TemplateError(message)


@lru_cache(maxsize=16)
def accepts_any_role(source: str) -> bool:
    """The template writes a message of an unknown role (ChatML templates do) rather than
    dropping it or raising."""
    probe = "\ue000probe\ue001"
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    try:
        text = env.from_string(source).render(
            messages=[{"role": "user", "content": "hi"}, {"role": "tool", "content": probe}],
            add_generation_prompt=True,
            bos_token="",
            eos_token="",
        )
    except Exception:  # noqa: BLE001 - the template raises on unknown roles
        return False
    return probe in text


def _arguments(text: str) -> Any:
    """Arguments as transformers passes them to templates: the parsed object when it parses."""
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return text


def _template_message(m: common_pb2.ChatMessage, names: Mapping[str, str]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.name:
        msg["name"] = m.name
    if m.tool_calls:
        msg["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": _arguments(c.arguments)},
            }
            for c in m.tool_calls
        ]
    if m.tool_call_id:
        msg["tool_call_id"] = m.tool_call_id
        if not m.name and m.tool_call_id in names:
            msg["name"] = names[m.tool_call_id]
    return msg


def format_call(name: str, arguments: str) -> str:
    """One call in the format the model answers with (and the grammar enforces)."""
    args = arguments.strip() or "{}"
    return f'{CALL_OPEN}\n{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": {args}}}\n{CALL_CLOSE}'


def _fallback_message(m: common_pb2.ChatMessage, tool_role: str) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": tool_role, "content": f"{RESPONSE_OPEN}\n{m.content}\n{RESPONSE_CLOSE}"}
    content = m.content
    if m.tool_calls:
        calls = "\n".join(format_call(c.name, c.arguments) for c in m.tool_calls)
        content = f"{content}\n{calls}" if content else calls
    msg: dict[str, Any] = {"role": m.role, "content": content}
    if m.name:
        msg["name"] = m.name
    return msg


def tool_section(tools: Sequence[ToolSpec]) -> str:
    listed = "".join("\n" + json.dumps(t.openai(), ensure_ascii=False) for t in tools)
    return FALLBACK_HEADER + listed + FALLBACK_FOOTER


def _with_tool_section(
    messages: list[dict[str, Any]], tools: Sequence[ToolSpec]
) -> list[dict[str, Any]]:
    """The tools section at the top of the system prompt (a new one when there is none)."""
    section = tool_section(tools)
    if messages and messages[0]["role"] == "system":
        first = dict(messages[0])
        first["content"] = f"{first['content']}\n\n{section}" if first["content"] else section
        return [first, *messages[1:]]
    return [{"role": "system", "content": section}, *messages]
