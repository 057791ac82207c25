"""OpenAI JSON ⇄ router protos: request validation (400 naming `param`) and response shapes.

Unknown fields are ignored, as OpenAI-compatible servers usually do, so newer SDKs keep
working; known fields with a wrong type or range are refused with the field's name.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mesh.errors import InvalidRequest
from mesh.pb import common_pb2, inference_pb2

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_STOP = 4
# OpenAI's legacy completions default; chat has none (up to the context window).
COMPLETIONS_DEFAULT_MAX_TOKENS = 16
FINISH_REASONS = {
    common_pb2.FINISH_REASON_STOP: "stop",
    common_pb2.FINISH_REASON_LENGTH: "length",
    common_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
    common_pb2.FINISH_REASON_CANCELLED: "stop",
}


@dataclass(frozen=True, slots=True)
class StreamOptions:
    stream: bool = False
    include_usage: bool = False


@dataclass(frozen=True, slots=True)
class ChatCall:
    request: inference_pb2.ChatCompletionRequest
    options: StreamOptions


@dataclass(frozen=True, slots=True)
class CompletionCall:
    request: inference_pb2.CompletionRequest
    options: StreamOptions


@dataclass(frozen=True, slots=True)
class EmbeddingsCall:
    request: inference_pb2.EmbeddingsRequest
    encoding_format: str


# -- parsing helpers -------------------------------------------------------------------


def _bad(message: str, param: str | None, code: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code or "invalid_request_error")


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad(
            f"We could not parse the JSON body of your request ({exc}). Send valid JSON "
            "with 'Content-Type: application/json'.",
            None,
            "invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_json")
    return body


def _get(body: dict[str, Any], key: str) -> Any:
    """The value, with JSON null meaning 'not given' (as OpenAI treats it)."""
    return body.get(key)


def _string(body: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = _get(body, key)
    if value is None:
        if required:
            raise _bad(f"Missing required parameter: '{key}'.", key, "missing_required_parameter")
        return ""
    if not isinstance(value, str):
        raise _bad(f"'{key}' must be a string, got {type(value).__name__}.", key)
    return value


def _number(
    body: dict[str, Any], key: str, lo: float, hi: float, default: float | None
) -> float | None:
    value = _get(body, key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"'{key}' must be a number between {lo:g} and {hi:g}.", key)
    if not lo <= value <= hi:
        raise _bad(f"'{key}' is {value:g}; it must be between {lo:g} and {hi:g}.", key)
    return float(value)


def _integer(body: dict[str, Any], key: str, lo: int | None = None) -> int | None:
    value = _get(body, key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{key}' must be an integer.", key)
    if lo is not None and value < lo:
        raise _bad(f"'{key}' is {value}; it must be at least {lo}.", key)
    return value


def _boolean(body: dict[str, Any], key: str) -> bool:
    value = _get(body, key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(f"'{key}' must be a boolean.", key)
    return value


def _stop(body: dict[str, Any]) -> list[str]:
    value = _get(body, "stop")
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _bad("'stop' must be a string or a list of strings.", "stop")
    if len(value) > MAX_STOP:
        raise _bad(f"'stop' has {len(value)} sequences; at most {MAX_STOP} are allowed.", "stop")
    return [s for s in value if s]


def _stream_options(body: dict[str, Any]) -> StreamOptions:
    stream = _boolean(body, "stream")
    opts = _get(body, "stream_options")
    if opts is None:
        return StreamOptions(stream=stream)
    if not isinstance(opts, dict):
        raise _bad("'stream_options' must be an object.", "stream_options")
    return StreamOptions(stream=stream, include_usage=_boolean(opts, "include_usage") and stream)


def _sampling(body: dict[str, Any], default_max_tokens: int = 0) -> common_pb2.SamplingParams:
    n = _integer(body, "n")
    if n not in (None, 1):
        raise _bad("Only n=1 is supported: send one request per completion.", "n")
    max_tokens = _integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1)
    sampling = common_pb2.SamplingParams(
        # Unset temperature / top_p: the worker applies the model's recommended defaults.
        temperature=_number(body, "temperature", 0, 2, None),
        top_p=_number(body, "top_p", 0, 1, None),
        top_k=_integer(body, "top_k", 0) or 0,
        max_tokens=default_max_tokens if max_tokens is None else max_tokens,
        stop=_stop(body),
        presence_penalty=_number(body, "presence_penalty", -2, 2, 0.0),
        frequency_penalty=_number(body, "frequency_penalty", -2, 2, 0.0),
        # Extension (as in vLLM and llama.cpp's server): `ignore_eos: true` keeps generating
        # past the end-of-sequence token up to max_tokens; benchmarks use it for fixed lengths.
        ignore_eos=_boolean(body, "ignore_eos"),
    )
    seed = _integer(body, "seed")
    if seed is not None:
        sampling.seed = seed
    return sampling


# -- requests ---------------------------------------------------------------------------


def _content(value: Any, param: str) -> str:
    """A message's content: a string, or a list of text parts (joined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for i, part in enumerate(value):
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise _bad(
                    "Only text content parts ({'type': 'text', 'text': ...}) are supported.",
                    f"{param}[{i}]",
                )
            texts.append(part["text"])
        return "".join(texts)
    raise _bad("'content' must be a string or a list of text parts.", param)


def _message(value: Any, index: int) -> common_pb2.ChatMessage:
    param = f"messages[{index}]"
    if not isinstance(value, dict):
        raise _bad(f"'{param}' must be an object with 'role' and 'content'.", param)
    role = value.get("role")
    if role not in ROLES:
        raise _bad(
            f"'{param}.role' must be one of {', '.join(ROLES)}; got {role!r}.", f"{param}.role"
        )
    content = value.get("content")
    if content is None and role not in ("assistant", "tool"):
        raise _bad(f"'{param}.content' is required.", f"{param}.content")
    name = value.get("name")
    return common_pb2.ChatMessage(
        role="system" if role == "developer" else role,
        content="" if content is None else _content(content, f"{param}.content"),
        name=name if isinstance(name, str) else "",
    )


def chat_request(body: dict[str, Any]) -> ChatCall:
    model = _string(body, "model", required=True)
    messages = _get(body, "messages")
    if messages is None:
        raise _bad(
            "Missing required parameter: 'messages'.", "messages", "missing_required_parameter"
        )
    if not isinstance(messages, list) or not messages:
        raise _bad("'messages' must be a non-empty list of {role, content} objects.", "messages")
    request = inference_pb2.ChatCompletionRequest(
        model=model,
        messages=[_message(m, i) for i, m in enumerate(messages)],
        sampling=_sampling(body),
        user=_string(body, "user"),
    )
    return ChatCall(request, _stream_options(body))


def completion_request(body: dict[str, Any]) -> CompletionCall:
    model = _string(body, "model", required=True)
    prompt = _get(body, "prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if prompt is None:
        raise _bad("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    if not isinstance(prompt, str):
        raise _bad("'prompt' must be a string (or a list of exactly one string).", "prompt")
    request = inference_pb2.CompletionRequest(
        model=model,
        prompt=prompt,
        sampling=_sampling(body, COMPLETIONS_DEFAULT_MAX_TOKENS),
        user=_string(body, "user"),
    )
    return CompletionCall(request, _stream_options(body))


def embeddings_request(body: dict[str, Any]) -> EmbeddingsCall:
    model = _string(body, "model", required=True)
    if _get(body, "dimensions") is not None:
        raise _bad(
            "'dimensions' is not supported: the models return their native size.", "dimensions"
        )
    encoding = _string(body, "encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise _bad("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    inputs = _get(body, "input")
    if inputs is None:
        raise _bad("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if (
        not isinstance(inputs, list)
        or not inputs
        or not all(isinstance(s, str) and s for s in inputs)
    ):
        raise _bad(
            "'input' must be a non-empty string or a non-empty list of non-empty strings.", "input"
        )
    request = inference_pb2.EmbeddingsRequest(
        model=model, inputs=inputs, user=_string(body, "user")
    )
    return EmbeddingsCall(request, encoding)


# -- responses --------------------------------------------------------------------------


def usage_json(usage: common_pb2.Usage, cost: common_pb2.Cost | None = None) -> dict[str, Any]:
    """OpenAI's usage object. With `cost` (the streamed usage chunk, whose HTTP headers left
    before the cost was known) it also carries `cost_eur` and `energy_kwh`, decimal strings
    equal to the `x-llmaas-cost-eur` / `x-llmaas-energy-kwh` headers of a non-streamed answer."""
    out: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }
    if cost is not None:
        out["cost_eur"] = cost.cost_eur or "0"
        out["energy_kwh"] = cost.energy_kwh or "0"
    return out


def reasoning_fields(reasoning: str) -> dict[str, str]:
    """A thinking model's hidden reasoning, under both names clients read: `reasoning_content`
    (DeepSeek, vLLM, most SDK helpers) and `reasoning` (the newer name). Absent when empty."""
    return {"reasoning_content": reasoning, "reasoning": reasoning} if reasoning else {}


def finish_reason(value: int) -> str | None:
    return FINISH_REASONS.get(value)


def chat_completion_json(
    first: inference_pb2.CompletionChunk,
    text: str,
    last: inference_pb2.CompletionChunk,
    reasoning: str = "",
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{first.id}",
        "object": "chat.completion",
        "created": first.created,
        "model": first.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, **reasoning_fields(reasoning)},
                "finish_reason": finish_reason(last.finish_reason),
                "logprobs": None,
            }
        ],
        "usage": usage_json(last.usage),
    }


def text_completion_json(
    first: inference_pb2.CompletionChunk,
    text: str,
    last: inference_pb2.CompletionChunk,
    reasoning: str = "",
) -> dict[str, Any]:
    return {
        "id": f"cmpl-{first.id}",
        "object": "text_completion",
        "created": first.created,
        "model": first.model,
        "choices": [
            {
                "index": 0,
                "text": text,
                "finish_reason": finish_reason(last.finish_reason),
                "logprobs": None,
                **reasoning_fields(reasoning),
            }
        ],
        "usage": usage_json(last.usage),
    }


def embeddings_json(
    reply: inference_pb2.EmbeddingsResponse, encoding_format: str
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _vector(v.values, encoding_format)}
            for i, v in enumerate(reply.data)
        ],
        "model": reply.model,
        "usage": {
            "prompt_tokens": reply.usage.prompt_tokens,
            "total_tokens": reply.usage.prompt_tokens,
        },
    }


def _vector(values: Sequence[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        # What OpenAI sends: little-endian float32, base64 (the SDK's default request).
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return list(values)


def model_json(info: common_pb2.ModelInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "object": "model",
        "created": info.created,
        "owned_by": info.owned_by or "llmaas",
        "phase": info.phase or None,
        "kind": info.kind or None,
        "served": info.served,
        "context_length": info.context_length or None,
        "dmp": info.dmp or None,
        "dsp": info.dsp or None,
        "deprecation_date": info.deprecation_date or None,
        "successor": info.successor or None,
        "energy_kwh_per_mtok": info.energy_kwh_per_mtok or None,
    }
