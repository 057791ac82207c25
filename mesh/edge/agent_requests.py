"""Request models of the agent features: tools, tool choice, tool calls in messages,
`response_format` (structured outputs) and `logit_bias`.

A JSON schema (a tool's `parameters`, `response_format.json_schema.schema`) is checked
against its JSON-schema meta-schema here, so a malformed one is a 400 naming the field
before anything compiles it; what the worker's grammar compiler cannot handle comes back
as a 400 naming `response_format` (or `tools`) from the worker.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from mesh.edge.request_types import Strict, Text, bounded_text, refuse

# OpenAI's limits: 128 tools, function names of 1-64 [a-zA-Z0-9_-].
MAX_TOOLS = 128
MAX_TOOL_CALLS = 128
MAX_ID_CHARS = 256
MAX_LOGIT_BIAS = 1024
MAX_TOKEN_ID_DIGITS = 9  # vocabularies are far below 10**9 tokens; keeps ids in int32
NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"
FunctionName = Annotated[str, Field(pattern=NAME_PATTERN)]
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")


def _json_schema(value: Any) -> dict[str, Any]:
    """A JSON schema object valid against its meta-schema (draft 2020-12 unless `$schema`
    names another)."""
    if not isinstance(value, dict):
        raise PydanticCustomError("json_schema", "a JSON schema must be a JSON object")
    try:
        cls = jsonschema.validators.validator_for(value, default=jsonschema.Draft202012Validator)
        cls.check_schema(value)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise PydanticCustomError(
            "json_schema",
            "not a valid JSON schema: {reason} (at {where})",
            {"reason": exc.message[:200], "where": where[:200]},
        ) from None
    except RecursionError:
        raise PydanticCustomError("json_schema", "the JSON schema is nested too deeply") from None
    return value


JsonSchema = Annotated[
    Any,
    AfterValidator(_json_schema),
    WithJsonSchema({"type": "object", "description": "A JSON schema (draft 2020-12)."}),
]


# -- tools ------------------------------------------------------------------------------


class FunctionDef(Strict):
    name: FunctionName
    description: Text | None = None
    parameters: JsonSchema | None = None
    strict: bool | None = None


class ToolDef(Strict):
    type: Literal["function"]
    function: FunctionDef


def _function_tools_only(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") not in (None, "function"):
        raise refuse(f"only tools of type 'function' are supported, not {value.get('type')!r}")
    return value


Tool = Annotated[ToolDef, BeforeValidator(_function_tools_only)]


class FunctionRef(Strict):
    name: FunctionName


class NamedToolChoice(Strict):
    type: Literal["function"]
    function: FunctionRef


def _tool_choice_kind(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") not in (None, "function"):
        raise refuse(
            f"tool_choice of type {value.get('type')!r} is not supported: use 'none', 'auto', "
            "'required' or {'type': 'function', 'function': {'name': ...}}"
        )
    return value


ToolChoice = Annotated[
    Literal["none", "auto", "required"] | NamedToolChoice, BeforeValidator(_tool_choice_kind)
]


# -- tool calls in the conversation -----------------------------------------------------


class CalledFunction(Strict):
    name: FunctionName
    # The arguments as the model wrote them (JSON object text).
    arguments: Text


class ToolCallIn(Strict):
    id: bounded_text(MAX_ID_CHARS)
    type: Literal["function"]
    function: CalledFunction


ToolCalls = Annotated[list[ToolCallIn], Field(max_length=MAX_TOOL_CALLS)]


# -- response_format ----------------------------------------------------------------------


class JsonSchemaFormat(Strict):
    name: FunctionName | None = None
    description: Text | None = None
    # Named `schema` on the wire; `schema` shadows a BaseModel attribute in pydantic.
    schema_: Annotated[JsonSchema | None, Field(alias="schema")] = None
    strict: bool | None = None


class ResponseFormat(Strict):
    # One model rather than a tagged union, so an error names `response_format.json_schema...`.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"type": {"const": "json_schema"}}},
            "then": {
                "required": ["json_schema"],
                "properties": {"json_schema": {"type": "object"}},
            },
        }
    )
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


# -- logit_bias ---------------------------------------------------------------------------


def _logit_bias(value: dict[str, Any]) -> dict[str, Any]:
    for key in value:
        if not (key.isascii() and key.isdigit() and len(key) <= MAX_TOKEN_ID_DIGITS):
            raise PydanticCustomError(
                "logit_bias_key",
                "keys are token ids as decimal strings (e.g. {example}), not {key}",
                {"key": json.dumps(key[:40]), "example": '{"50256": -100}'},
            )
    return value


LogitBias = Annotated[
    dict[str, Annotated[float, Field(ge=-100, le=100)]],
    Field(max_length=MAX_LOGIT_BIAS),
    AfterValidator(_logit_bias),
    WithJsonSchema(
        {
            "type": "object",
            "description": "token id (decimal string) -> bias added to its logit",
            "propertyNames": {"pattern": f"^[0-9]{{1,{MAX_TOKEN_ID_DIGITS}}}$"},
            "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100},
            "maxProperties": MAX_LOGIT_BIAS,
        }
    ),
]
