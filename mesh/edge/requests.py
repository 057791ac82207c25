"""The edge's request bodies as strict pydantic models: types, bounds and lengths in one place.

The same models give the OpenAPI document (`mesh.edge.openapi`) its request schemas, so what
is published is what is enforced. Strict types: a string is never an integer, a bool never a
number. Bounds come from the proto fields the values go into (int32 / int64), so a value that
passed here always encodes; strings must be valid Unicode (a lone UTF-16 surrogate, legal in
JSON's `\\ud800` escape, cannot be encoded by protobuf). JSON null means "not given", and
unknown fields are ignored (as OpenAI-compatible servers do, so newer SDKs keep working).

A refusal is a 400 naming the field (`param`, OpenAI's `messages[0].content` form) and
saying what is expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from mesh.edge import agent_requests as agent
from mesh.edge.compat_fields import ChatCompatibility
from mesh.edge.request_types import (
    INT32_MAX,
    INT64_MAX,
    INT64_MIN,
    Text,
    _integral_float,
    only,
    unsupported,
)
from mesh.edge.request_types import Strict as _Strict
from mesh.edge.request_types import bounded_int as _int
from mesh.edge.request_types import bounded_text as _text
from mesh.errors import InvalidRequest
from mesh.wire import MAX_MODEL_ID_CHARS

# Client-chosen identifiers travel in logs, audit rows and gRPC metadata: keep them short.
MAX_MODEL_CHARS = MAX_MODEL_ID_CHARS  # the wire contract (mesh.wire)
MAX_USER_CHARS = 256
MAX_NAME_CHARS = 256
MAX_STOP = 4
MAX_STOP_CHARS = 1024
MAX_MESSAGES = 4096
MAX_CONTENT_PARTS = 1024
# OpenAI's own limit on inputs per embeddings request.
MAX_EMBEDDING_INPUTS = 2048
ROLES = ("system", "developer", "user", "assistant", "tool")
# Choices per request: each is its own sequence on one worker, so n multiplies its load.
MAX_N = 16
MAX_TOP_LOGPROBS = 20  # OpenAI's bound (chat)
MAX_COMPLETION_LOGPROBS = 5  # OpenAI's bound (legacy completions)


class TextPart(_Strict):
    type: Literal["text"]
    text: Text


class ChatMessage(_Strict):
    # Published too: the prompt's own messages need content; assistant and tool may omit it.
    # A tool turn names the call it answers.
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"role": {"enum": ["system", "developer", "user"]}}},
                    "then": {
                        "required": ["content"],
                        "properties": {"content": {"not": {"type": "null"}}},
                    },
                },
                {
                    "if": {"properties": {"role": {"const": "tool"}}},
                    "then": {
                        "required": ["tool_call_id"],
                        "properties": {"tool_call_id": {"type": "string", "minLength": 1}},
                    },
                },
            ]
        }
    )
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Annotated[
        Text | Annotated[list[TextPart], Field(max_length=MAX_CONTENT_PARTS)] | None,
        Field(validate_default=True),
    ] = None
    name: _text(MAX_NAME_CHARS) | None = None
    # Assistant turns: the calls the model made; tool turns: the call answered.
    tool_calls: agent.ToolCalls | None = None
    tool_call_id: _text(agent.MAX_ID_CHARS) | None = None
    # An earlier refusal of the assistant (OpenAI's field): sent back as its content.
    refusal: Text | None = None
    function_call: unsupported("deprecated: send 'tool_calls' instead of 'function_call'") = None
    audio: unsupported("audio is not supported") = None

    @field_validator("content")
    @classmethod
    def _content_required(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.data.get("role") not in (None, "assistant", "tool"):
            raise PydanticCustomError("missing", "Field required")
        return value


class StreamOptions(_Strict):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None  # padding of streamed events; none sent here


def _n_bound(value: int) -> int:
    if value > MAX_N:
        raise PydanticCustomError(
            "n_too_large",
            "n is at most {max_n}: each choice is its own sequence on one worker, so a larger "
            "n would hold a worker's batch for one request; send several requests instead",
            {"max_n": MAX_N},
        )
    return value


class _Sampling(_Strict):
    model: _text(MAX_MODEL_CHARS, 1)
    # 0 means greedy decoding; so does top_p 0 (only the most likely token is left).
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: _int(0, INT32_MAX) | None = None
    # Extensions (as in vLLM): min-p sampling and HF's repetition penalty.
    min_p: Annotated[float, Field(ge=0, le=1)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0, le=10)] | None = None
    max_tokens: _int(1, INT32_MAX) | None = None
    max_completion_tokens: _int(1, INT32_MAX) | None = None  # OpenAI's newer name; wins
    n: (
        Annotated[
            int,
            Field(ge=1),
            BeforeValidator(_integral_float),
            AfterValidator(_n_bound),
            WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_N}),
        ]
        | None
    ) = None
    seed: _int(INT64_MIN, INT64_MAX) | None = None
    stop: (
        _text(MAX_STOP_CHARS)
        | Annotated[list[_text(MAX_STOP_CHARS)], Field(max_length=MAX_STOP)]
        | None
    ) = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: agent.LogitBias | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    # Extension (as in vLLM and llama.cpp's server): keep generating past end-of-sequence.
    ignore_eos: bool | None = None
    user: _text(MAX_USER_CHARS) | None = None

    def check(self) -> None:
        """Rules across fields (400 naming the field); the subclasses add theirs."""


class ChatCompletionRequest(_Sampling, ChatCompatibility):
    # Published rules across fields (those JSON schema can say; `check` enforces them all).
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {
                        "required": ["top_logprobs"],
                        "properties": {"top_logprobs": {"type": "integer", "minimum": 1}},
                    },
                    "then": {"required": ["logprobs"], "properties": {"logprobs": {"const": True}}},
                },
                {
                    "if": {
                        "required": ["tool_choice"],
                        "properties": {
                            "tool_choice": {"anyOf": [{"const": "required"}, {"type": "object"}]}
                        },
                    },
                    "then": {
                        "required": ["tools"],
                        "properties": {"tools": {"type": "array", "minItems": 1}},
                    },
                },
            ]
        }
    )
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=MAX_MESSAGES)]
    logprobs: bool | None = None
    top_logprobs: _int(0, MAX_TOP_LOGPROBS) | None = None
    response_format: agent.ResponseFormat | None = None
    tools: Annotated[list[agent.Tool], Field(max_length=agent.MAX_TOOLS)] | None = None
    tool_choice: agent.ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: Literal[agent.REASONING_EFFORTS] | None = None
    # Extension (as in vLLM): extra chat-template variables, e.g. {"enable_thinking": false}.
    chat_template_kwargs: Annotated[dict[str, Any], Field(max_length=64)] | None = None

    def check(self) -> None:
        fmt = self.response_format
        if fmt is not None and fmt.type == "json_schema" and fmt.json_schema is None:
            raise _bad("response_format.json_schema", "'json_schema' needs a 'json_schema' object")
        if self.top_logprobs and not self.logprobs:
            raise _bad("top_logprobs", "'top_logprobs' needs 'logprobs': true")
        names = [t.function.name for t in self.tools or ()]
        if len(set(names)) != len(names):
            raise _bad("tools", "each tool needs its own function name", COMBINATION)
        choice = self.tool_choice
        if choice not in (None, "none", "auto") and not names:
            raise _bad("tool_choice", "'tool_choice' needs 'tools'")
        if isinstance(choice, agent.NamedToolChoice) and choice.function.name not in names:
            raise _bad("tool_choice", f"no tool is named {choice.function.name!r}", COMBINATION)
        for i, msg in enumerate(self.messages):
            if msg.role == "tool" and not msg.tool_call_id:
                raise InvalidRequest(
                    f"Missing required parameter: 'messages[{i}].tool_call_id'.",
                    param=f"messages[{i}].tool_call_id",
                    code="missing_required_parameter",
                )


class CompletionRequest(_Sampling):
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=1)]
    echo: bool | None = None
    logprobs: _int(0, MAX_COMPLETION_LOGPROBS) | None = None
    suffix: only(lambda v: v == "", "'suffix' (insertion) is not supported", {"const": ""}) = None
    best_of: _int(1, MAX_N) | None = None

    def check(self) -> None:
        if self.best_of is not None and self.best_of != (self.n or 1):
            raise _bad(
                "best_of",
                "'best_of' other than n is not supported: ask for n choices and pick one",
                COMBINATION,
            )


class EmbeddingsRequest(_Strict):
    model: _text(MAX_MODEL_CHARS, 1)
    input: (
        _text(None, 1)
        | Annotated[list[_text(None, 1)], Field(min_length=1, max_length=MAX_EMBEDDING_INPUTS)]
    )
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[
        Any,
        AfterValidator(lambda v: _refuse_dimensions(v)),
        WithJsonSchema({"type": "null", "description": "Not supported: native size only."}),
    ] = None
    user: _text(MAX_USER_CHARS) | None = None


def _refuse_dimensions(value: Any) -> None:
    if value is not None:
        raise PydanticCustomError(
            "unsupported", "'dimensions' is not supported: the models return their native size"
        )


# -- errors -----------------------------------------------------------------------------

# What a union-typed field accepts, said once (pydantic reports one error per member).
_UNION_HINTS = {
    "stop": f"a string or a list of at most {MAX_STOP} strings",
    "content": "a string or a list of text parts ({'type': 'text', 'text': ...})",
    "prompt": "a string (or a list of exactly one string)",
    "input": (
        f"a non-empty string or a non-empty list of at most {MAX_EMBEDDING_INPUTS} "
        "non-empty strings"
    ),
}
_MODELS = (
    TextPart,
    ChatMessage,
    StreamOptions,
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingsRequest,
    agent.FunctionDef,
    agent.ToolDef,
    agent.FunctionRef,
    agent.NamedToolChoice,
    agent.CalledFunction,
    agent.ToolCallIn,
    agent.JsonSchemaFormat,
    agent.ResponseFormat,
)
_FIELD_NAMES = frozenset(
    field.alias or name for m in _MODELS for name, field in m.model_fields.items()
)


# Error codes of the refusals the published JSON schema cannot express (it cannot compare
# one field with another, nor check a JSON schema against its meta-schema).
COMBINATION = "invalid_parameter_combination"
INVALID_JSON_SCHEMA = "invalid_json_schema"


def _bad(param: str, message: str, code: str | None = None) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{param}': {message}.", param=param, code=code)


def _param(loc: Iterable[str | int]) -> str:
    """OpenAI's path form (`messages[0].content`), without pydantic's union-member tags."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _FIELD_NAMES:
            out += f".{part}" if out else part
    return out


def to_invalid_request(exc: ValidationError) -> InvalidRequest:
    """The first offending field's error as a 400 the caller can act on."""
    errors = exc.errors(include_url=False, include_input=False)
    # Of a union's per-member errors (same top-level field) the most telling: invalid text
    # first, then a member whose type matched but whose value did not, then the deepest.
    same = [e for e in errors if e["loc"][:1] == errors[0]["loc"][:1]]
    err = max(
        same,
        key=lambda e: (
            e["type"] == "string_unicode",
            not e["type"].endswith("_type"),
            len(_param(e["loc"])),
        ),
    )
    loc, param = err["loc"], _param(err["loc"])
    if err["type"] == "missing":
        return InvalidRequest(
            f"Missing required parameter: '{param}'.",
            param=param,
            code="missing_required_parameter",
        )
    message = err["msg"]
    tag = next((i for i, p in enumerate(loc) if isinstance(p, str) and p not in _FIELD_NAMES), None)
    field = loc[tag - 1] if tag else None
    union_level = tag is not None and param == _param(loc[:tag])
    if union_level and err["type"].endswith("_type") and field in _UNION_HINTS:
        message = f"Input should be {_UNION_HINTS[field]}"  # no member matched at all
    elif err["type"] == "string_unicode":
        message = (
            "Input should be valid Unicode text; it contains a lone UTF-16 surrogate "
            "(surrogates such as \\ud800 must come in pairs)"
        )
    elif err["type"] in ("model_type", "model_attributes_type", "dict_type"):
        message = "Input should be a JSON object"
    code = INVALID_JSON_SCHEMA if err["type"] == "json_schema" else None
    return InvalidRequest(f"Invalid '{param}': {message}.", param=param, code=code)


def validate(model: type[_Strict], body: dict[str, Any]) -> Any:
    try:
        req = model.model_validate(body)
    except ValidationError as exc:
        raise to_invalid_request(exc) from None
    if isinstance(req, _Sampling):
        req.check()
    return req
