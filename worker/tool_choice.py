"""The grammar a request's `tool_choice` puts on the answer (an xgrammar structural tag).

Each offered tool is a tag: `<tool_call>\\n{"name": "<name>", "arguments": ` + a JSON value
following the tool's parameters schema + `}\\n</tool_call>` (the format worker.tool_prompt
asks for and worker.tool_calls parses).

- `none`: no constraint from tools (they are not offered either).
- `auto`: free text, but once the model writes `<tool_call>` the call must be one of the tags;
  end-of-sequence is allowed outside a call. With a `response_format`, the answer is either
  that format or calls.
- `required`: the whole answer is calls (at least one; exactly one when parallel_tool_calls is
  false), separated by newlines; no free text, so a small model cannot drift.
- a named function: the whole answer is one call to it.

With `required` or a named function the tool grammar replaces any `response_format`: a call is
what the request asked for.

Thinking models reason first: `reasoning="optional"` lets the answer start with a
`<think>...</think>` block, `reasoning="open"` (the prompt already opened `<think>`, R1-style)
makes it start with the rest of one; the constraint applies after it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mesh.pb import common_pb2
from worker.errors import InvalidRequest
from worker.grammar import bounded_numbers
from worker.reasoning import CLOSE_TAG, OPEN_TAG
from worker.tool_prompt import CALL_CLOSE, CALL_OPEN, ToolSpec

CALL_SEPARATOR = "\n"
# Whitespace characters allowed in a row between JSON tokens of the arguments: enough for
# ", " and ": ", too few for a small model to pad a call past its token budget.
MAX_WHITESPACE = 1


def call_begin(name: str) -> str:
    return f'{CALL_OPEN}\n{{"name": {json.dumps(name, ensure_ascii=False)}, "arguments": '


CALL_END = f"}}\n{CALL_CLOSE}"


def _tag(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "tag",
        "begin": call_begin(tool.name),
        "content": {
            "type": "json_schema",
            "json_schema": bounded_numbers(tool.parameters),
            "max_whitespace_cnt": MAX_WHITESPACE,
        },
        "end": CALL_END,
    }


def _response_format(constraint: common_pb2.OutputConstraint) -> dict[str, Any] | None:
    """The response_format as a structural-tag format (None: free text)."""
    kind = constraint.WhichOneof("kind")
    if kind == "json_object" and constraint.json_object:
        schema: Any = {"type": "object"}
    elif kind == "json_schema":
        try:
            schema = json.loads(constraint.json_schema)
        except ValueError as exc:
            raise InvalidRequest(
                f"The JSON schema is not valid JSON: {exc}", "response_format"
            ) from None
    elif kind == "regex":
        return {"type": "regex", "pattern": constraint.regex}
    elif kind == "grammar":
        return {"type": "grammar", "grammar": constraint.grammar}
    else:
        return None
    return {
        "type": "json_schema",
        "json_schema": bounded_numbers(schema),
        "max_whitespace_cnt": MAX_WHITESPACE,
    }


def tool_format(
    tools: Sequence[ToolSpec],
    choice: common_pb2.ToolChoice,
    parallel: bool = True,
    response_format: common_pb2.OutputConstraint | None = None,
    reasoning: str = "",
) -> dict[str, Any] | None:
    """The structural tag (xgrammar's JSON form) for the request, or None when tools add no
    constraint. Raises InvalidRequest(param="tool_choice") for a choice the tools cannot meet."""
    mode = choice.mode
    if mode == common_pb2.TOOL_CHOICE_NONE:
        return None
    if mode in (common_pb2.TOOL_CHOICE_REQUIRED, common_pb2.TOOL_CHOICE_FUNCTION) and not tools:
        raise InvalidRequest(
            "tool_choice asks for a tool call, but no tools were given.", "tool_choice"
        )
    if not tools:
        return None
    tags = [_tag(t) for t in tools]
    if mode == common_pb2.TOOL_CHOICE_FUNCTION:
        named = [t for t in tools if t.name == choice.function_name]
        if not named:
            raise InvalidRequest(
                f"tool_choice names function {choice.function_name[:80]!r}, which is not among "
                f"the tools ({', '.join(t.name for t in tools)}).",
                "tool_choice",
            )
        fmt: dict[str, Any] = _tag(named[0])
    elif mode == common_pb2.TOOL_CHOICE_REQUIRED:
        fmt = _calls(tags, parallel)
    else:  # auto
        answer = _response_format(response_format) if response_format is not None else None
        if answer is not None:
            fmt = {"type": "or", "elements": [answer, _calls(tags, parallel)]}
        else:
            fmt = {
                "type": "triggered_tags",
                "triggers": [CALL_OPEN],
                "tags": tags,
                "stop_after_first": not parallel,
            }
            if reasoning == "optional":  # free text already allows a think block
                reasoning = ""
    return {"type": "structural_tag", "format": _after_reasoning(fmt, reasoning)}


def _after_reasoning(fmt: dict[str, Any], reasoning: str) -> dict[str, Any]:
    think = {"type": "tag", "begin": OPEN_TAG, "content": {"type": "any_text"}, "end": CLOSE_TAG}
    if reasoning == "open":  # the prompt opened it: the rest of the block
        prefix: dict[str, Any] = {**think, "begin": ""}
    elif reasoning == "optional":
        prefix = {"type": "optional", "content": think}
    else:
        return fmt
    spacing = {"type": "regex", "pattern": r"\s{0,4}"}
    return {"type": "sequence", "elements": [prefix, spacing, fmt]}


def _calls(tags: list[dict[str, Any]], parallel: bool) -> dict[str, Any]:
    """One call (or, parallel, one or more separated by newlines) and nothing else."""
    return {
        "type": "tags_with_separator",
        "tags": tags,
        "separator": CALL_SEPARATOR,
        "at_least_one": True,
        "stop_after_first": not parallel,
    }
