"""The edge's OpenAPI 3.1 document: request schemas from the pydantic models that enforce
them (`mesh.edge.requests`), response shapes and the OpenAI error object written here.

Served at `GET /openapi.json` and kept as `mesh/edge/openapi.json` in the repository
(a test asserts they are equal). Regenerate the file after changing a model:
`python -m mesh.edge.openapi > mesh/edge/openapi.json`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from mesh.edge import requests

DOCUMENT_PATH = Path(__file__).with_name("openapi.json")
_REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(model=name)}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


_INT = {"type": "integer"}
_STR = {"type": "string"}
_ERROR = {
    "type": "object",
    "description": "OpenAI's error object.",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": _STR,
                "type": _STR,
                "param": _nullable(_STR),
                "code": _nullable(_STR),
            },
        }
    },
}
_USAGE = {
    "type": "object",
    "required": ["prompt_tokens", "total_tokens"],
    "properties": {
        "prompt_tokens": _INT,
        "completion_tokens": _INT,
        "total_tokens": _INT,
        "completion_tokens_details": {"type": "object"},
        "prompt_tokens_details": {"type": "object"},
    },
}


def _completion(kind: str, choice: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": _STR,
            "object": {"const": kind},
            "created": _INT,
            "model": _STR,
            "choices": {"type": "array", "items": choice},
            "usage": _ref("Usage"),
        },
    }


_FINISH = _nullable({"enum": ["stop", "length", "content_filter", "tool_calls"]})
_TOOL_CALL = {
    "type": "object",
    "required": ["id", "type", "function"],
    "properties": {
        "id": _STR,
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "arguments"],
            "properties": {"name": _STR, "arguments": {**_STR, "description": "JSON text"}},
        },
    },
}
_TOKEN = {
    "type": "object",
    "required": ["token", "logprob", "bytes"],
    "properties": {
        "token": _STR,
        "logprob": {"type": "number"},
        "bytes": {"type": "array", "items": _INT},
    },
}
_CHAT_LOGPROBS = {
    "type": "object",
    "description": "With `logprobs: true`: log-softmax of the logits after logit_bias and the "
    "grammar mask, before temperature, top-k, top-p and min-p.",
    "required": ["content"],
    "properties": {
        "content": {
            "type": "array",
            "items": {
                **_TOKEN,
                "properties": {
                    **_TOKEN["properties"],
                    "top_logprobs": {"type": "array", "items": _TOKEN},
                },
            },
        }
    },
}
_TEXT_LOGPROBS = {
    "type": "object",
    "required": ["tokens", "token_logprobs", "top_logprobs", "text_offset"],
    "properties": {
        "tokens": {"type": "array", "items": _STR},
        "token_logprobs": {"type": "array", "items": {"type": "number"}},
        "top_logprobs": {"type": "array", "items": {"type": "object"}},
        "text_offset": {"type": "array", "items": _INT},
    },
}
_RESPONSES = {
    "Error": _ERROR,
    "Usage": _USAGE,
    "ChatCompletion": _completion(
        "chat.completion",
        {
            "type": "object",
            "required": ["index", "message", "finish_reason"],
            "properties": {
                "index": _INT,
                "message": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"const": "assistant"},
                        "content": {**_nullable(_STR), "description": "null: only tool calls"},
                        "tool_calls": {"type": "array", "items": _TOOL_CALL},
                    },
                },
                "finish_reason": _FINISH,
                "logprobs": _nullable(_CHAT_LOGPROBS),
            },
        },
    ),
    "TextCompletion": _completion(
        "text_completion",
        {
            "type": "object",
            "required": ["index", "text", "finish_reason"],
            "properties": {
                "index": _INT,
                "text": _STR,
                "finish_reason": _FINISH,
                "logprobs": _nullable(_TEXT_LOGPROBS),
            },
        },
    ),
    "Embeddings": {
        "type": "object",
        "required": ["object", "data", "model", "usage"],
        "properties": {
            "object": {"const": "list"},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["object", "index", "embedding"],
                    "properties": {
                        "object": {"const": "embedding"},
                        "index": _INT,
                        "embedding": {
                            "description": "floats, or base64 of little-endian float32",
                            "anyOf": [{"type": "array", "items": {"type": "number"}}, _STR],
                        },
                    },
                },
            },
            "model": _STR,
            "usage": _ref("Usage"),
        },
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": _STR,
            "object": {"const": "model"},
            "created": _INT,
            "owned_by": _STR,
            "served": {"type": "boolean"},
            "context_length": _nullable(_INT),
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": _ref("Model")},
        },
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"enum": ["ok", "unavailable"]}},
    },
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


_ERRORS = {
    "4XX": {
        "description": (
            "Refused, as an OpenAI error object: 400 invalid body (`param` names the field; "
            "code `invalid_parameter_combination` or `invalid_json_schema` for the rules this "
            "document cannot express: a named tool_choice must name one of the tools, tool "
            "names are unique, best_of equals n, JSON schemas are valid against their "
            "meta-schema and compile to a grammar), "
            "401 missing or invalid key, 403 model not allowed, 404 unknown model or URL, "
            "408 body or headers too slow (LLMAAS_BODY_TIMEOUT_S, LLMAAS_HEADER_TIMEOUT_S), "
            "410 model retired, 413 body over LLMAAS_MAX_BODY_BYTES (8 MiB by default), "
            "429 rate limit or quota, 431 headers over LLMAAS_MAX_HEADER_BYTES."
        ),
        **_json(_ref("Error")),
    },
    "5XX": {
        "description": (
            "Not served, as an OpenAI error object: 503 no healthy worker, filter or router, "
            "or too many connections (LLMAAS_HTTP_LIMIT_CONCURRENCY); 504 deadline passed."
        ),
        **_json(_ref("Error")),
    },
}


def _post(summary: str, request: str, ok: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{"bearer": []}],
            "requestBody": {"required": True, **_json(_ref(request))},
            "responses": {"200": ok, **_ERRORS},
        }
    }


def _streamed(name: str) -> dict[str, Any]:
    return {
        "description": "The answer; with `stream: true`, server-sent events ending `data: [DONE]`.",
        "content": {
            "application/json": {"schema": _ref(name)},
            # Before OpenAPI 3.2, an event stream's `schema` describes one event: its `data` is
            # a JSON chunk, an error object, or the final `[DONE]`.
            "text/event-stream": {
                "schema": {"type": "object", "required": ["data"], "properties": {"data": _STR}}
            },
        },
    }


def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [
            (requests.ChatCompletionRequest, "validation"),
            (requests.CompletionRequest, "validation"),
            (requests.EmbeddingsRequest, "validation"),
        ],
        ref_template=_REF,
    )
    schemas = {**defs["$defs"], **_RESPONSES}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llmaas edge",
            "version": "1",
            "description": "OpenAI-compatible HTTP API of the llmaas inference mesh.",
        },
        "paths": {
            "/v1/chat/completions": _post(
                "Chat completion", "ChatCompletionRequest", _streamed("ChatCompletion")
            ),
            "/v1/completions": _post(
                "Text completion", "CompletionRequest", _streamed("TextCompletion")
            ),
            "/v1/embeddings": _post(
                "Embeddings",
                "EmbeddingsRequest",
                {"description": "One vector per input.", **_json(_ref("Embeddings"))},
            ),
            "/v1/models": {
                "get": {
                    "summary": "Models in the catalog",
                    "security": [{"bearer": []}],
                    "responses": {
                        "200": {"description": "The catalog.", **_json(_ref("ModelList"))},
                        **_ERRORS,
                    },
                }
            },
            "/v1/models/{model_id}": {
                "get": {
                    "summary": "One model",
                    "security": [{"bearer": []}],
                    "parameters": [
                        {"name": "model_id", "in": "path", "required": True, "schema": _STR}
                    ],
                    "responses": {
                        "200": {"description": "The model.", **_json(_ref("Model"))},
                        **_ERRORS,
                    },
                }
            },
            "/health": {
                "get": {
                    "summary": "Readiness of router, filter and one worker per served model",
                    "responses": {
                        "200": {"description": "Ready.", **_json(_ref("Health"))},
                        "503": {"description": "Not ready.", **_json(_ref("Health"))},
                    },
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def render() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
