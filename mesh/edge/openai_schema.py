"""OpenAI JSON ⇄ router protos: request validation (400 naming `param`) and response shapes.

The request bodies' types and bounds live in `mesh.edge.requests` (strict pydantic models,
which also give the OpenAPI document its schemas); this module parses the JSON and maps a
validated request to the router's protos.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mesh.edge import agent_schema, requests
from mesh.edge.requests import MAX_STOP, ROLES  # noqa: F401 - re-exported
from mesh.errors import InvalidRequest
from mesh.pb import common_pb2, inference_pb2

# OpenAI's legacy completions default; chat has none (up to the context window).
COMPLETIONS_DEFAULT_MAX_TOKENS = 16
FINISH_REASONS = {
    common_pb2.FINISH_REASON_STOP: "stop",
    common_pb2.FINISH_REASON_LENGTH: "length",
    common_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
    common_pb2.FINISH_REASON_CANCELLED: "stop",
    common_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls",
}


@dataclass(frozen=True, slots=True)
class StreamOptions:
    """How the answer is shaped: streamed or not, the usage chunk, the number of choices and
    whether they carry `logprobs`."""

    stream: bool = False
    include_usage: bool = False
    n: int = 1
    logprobs: bool = False


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


# -- requests ---------------------------------------------------------------------------


def _bad(message: str, param: str | None, code: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code or "invalid_request_error")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object. ValueError covers bad JSON, bad UTF-8, NaN/Infinity
    (not JSON) and integers past Python's 4,300-digit limit; RecursionError deep nesting."""
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
        raise _bad(
            f"We could not parse the JSON body of your request ({reason}). Send valid JSON "
            "with 'Content-Type: application/json'.",
            None,
            "invalid_json",
        ) from None
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None, "invalid_json")
    return body


def _sampling(req: requests._Sampling, default_max_tokens: int = 0) -> common_pb2.SamplingParams:
    max_tokens = req.max_completion_tokens or req.max_tokens
    stop = [req.stop] if isinstance(req.stop, str) else (req.stop or [])
    sampling = common_pb2.SamplingParams(
        # Unset temperature / top_p: the worker applies the model's recommended defaults.
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k or 0,
        max_tokens=default_max_tokens if max_tokens is None else max_tokens,
        stop=[s for s in stop if s],
        presence_penalty=req.presence_penalty or 0.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        ignore_eos=bool(req.ignore_eos),
    )
    if req.seed is not None:
        sampling.seed = req.seed
    agent_schema.add_sampling(req, sampling)
    return sampling


def _stream_options(req: requests._Sampling, logprobs: bool) -> StreamOptions:
    stream = bool(req.stream)
    usage = bool(req.stream_options and req.stream_options.include_usage)
    return StreamOptions(stream, usage and stream, req.n or 1, logprobs)


def _message(msg: requests.ChatMessage) -> common_pb2.ChatMessage:
    content = msg.content
    if isinstance(content, list):
        content = "".join(part.text for part in content)
    out = common_pb2.ChatMessage(
        role="system" if msg.role == "developer" else msg.role,
        content=content or msg.refusal or "",
        name=msg.name or "",
    )
    agent_schema.add_message_calls(msg, out)
    return out


def chat_request(body: dict[str, Any]) -> ChatCall:
    req = requests.validate(requests.ChatCompletionRequest, body)
    sampling = _sampling(req)
    agent_schema.add_chat_sampling(req, sampling)
    request = inference_pb2.ChatCompletionRequest(
        model=req.model,
        messages=[_message(m) for m in req.messages],
        sampling=sampling,
        # OpenAI's newer name for the end-user id; `user` wins when both are sent.
        user=req.user or req.safety_identifier or "",
        options=agent_schema.chat_options(req),
    )
    return ChatCall(request, _stream_options(req, bool(req.logprobs)))


def completion_request(body: dict[str, Any]) -> CompletionCall:
    req = requests.validate(requests.CompletionRequest, body)
    sampling = _sampling(req, COMPLETIONS_DEFAULT_MAX_TOKENS)
    agent_schema.add_completion_sampling(req, sampling)
    request = inference_pb2.CompletionRequest(
        model=req.model,
        prompt=req.prompt if isinstance(req.prompt, str) else req.prompt[0],
        sampling=sampling,
        user=req.user or "",
        echo=bool(req.echo),
    )
    return CompletionCall(request, _stream_options(req, req.logprobs is not None))


def embeddings_request(body: dict[str, Any]) -> EmbeddingsCall:
    req = requests.validate(requests.EmbeddingsRequest, body)
    inputs = [req.input] if isinstance(req.input, str) else req.input
    request = inference_pb2.EmbeddingsRequest(model=req.model, inputs=inputs, user=req.user or "")
    return EmbeddingsCall(request, req.encoding_format or "float")


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
