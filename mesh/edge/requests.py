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
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from mesh.errors import InvalidRequest
from mesh.wire import MAX_MODEL_ID_CHARS

INT32_MAX = 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
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


def _valid_unicode(value: str) -> str:
    # pydantic refuses lone surrogates in constrained strings only, not in plain ones.
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise PydanticCustomError("string_unicode", "invalid Unicode") from None
    return value


def _integral_float(value: Any) -> Any:
    """2.0 is the integer 2 (JSON has one number type); 2.5 stays a float and is refused."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= 2**64:
        return int(value)
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]


def _int(lo: int, hi: int) -> Any:
    # Bounds inside the before-validator, so the JSON schema says minimum / maximum.
    return Annotated[int, Field(ge=lo, le=hi), BeforeValidator(_integral_float)]


def _text(max_chars: int | None = None, min_chars: int = 0) -> Any:
    return Annotated[
        str, Field(min_length=min_chars, max_length=max_chars), AfterValidator(_valid_unicode)
    ]


def _only_n_1(value: int | None) -> int | None:
    if value not in (None, 1):
        raise PydanticCustomError(
            "n_unsupported", "only n=1 is supported: send one request per completion"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)


class TextPart(_Strict):
    type: Literal["text"]
    text: Text


class ChatMessage(_Strict):
    # Published too: the prompt's own messages need content; assistant and tool may omit it.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"role": {"enum": ["system", "developer", "user"]}}},
            "then": {"required": ["content"], "properties": {"content": {"not": {"type": "null"}}}},
        }
    )
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Annotated[
        Text | Annotated[list[TextPart], Field(max_length=MAX_CONTENT_PARTS)] | None,
        Field(validate_default=True),
    ] = None
    name: _text(MAX_NAME_CHARS) | None = None

    @field_validator("content")
    @classmethod
    def _content_required(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.data.get("role") not in (None, "assistant", "tool"):
            raise PydanticCustomError("missing", "Field required")
        return value


class StreamOptions(_Strict):
    include_usage: bool | None = None


class _Sampling(_Strict):
    model: _text(MAX_MODEL_CHARS, 1)
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_k: _int(0, INT32_MAX) | None = None
    max_tokens: _int(1, INT32_MAX) | None = None
    max_completion_tokens: _int(1, INT32_MAX) | None = None
    n: (
        Annotated[
            int,
            BeforeValidator(_integral_float),
            AfterValidator(_only_n_1),
            WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 1}),
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
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    # Extension (as in vLLM and llama.cpp's server): keep generating past end-of-sequence.
    ignore_eos: bool | None = None
    user: _text(MAX_USER_CHARS) | None = None


class ChatCompletionRequest(_Sampling):
    messages: Annotated[list[ChatMessage], Field(min_length=1, max_length=MAX_MESSAGES)]


class CompletionRequest(_Sampling):
    prompt: Text | Annotated[list[Text], Field(min_length=1, max_length=1)]


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
_FIELD_NAMES = frozenset(
    name
    for m in (TextPart, ChatMessage, StreamOptions, ChatCompletionRequest, CompletionRequest)
    for name in m.model_fields
) | frozenset(EmbeddingsRequest.model_fields)


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
    return InvalidRequest(f"Invalid '{param}': {message}.", param=param)


def validate(model: type[_Strict], body: dict[str, Any]) -> Any:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise to_invalid_request(exc) from None
