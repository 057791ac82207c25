"""Chat request fields taken for OpenAI compatibility: each is accepted with a value that
changes nothing here (a no-op: a hint the mesh has no use for, or the one value it serves)
and refused with 400 naming it otherwise, so no field is silently dropped."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from mesh.edge.request_types import Strict, bounded_text, only, unsupported

MAX_USER_CHARS = 256
_FALSE = {"const": False}


class ChatCompatibility(Strict):
    # OpenAI's newer name for the end-user id (passed on as `user` when that is absent).
    safety_identifier: bounded_text(MAX_USER_CHARS) | None = None
    metadata: Annotated[dict[str, bounded_text(512)], Field(max_length=16)] | None = None
    prompt_cache_key: bounded_text(1024) | None = None
    prompt_cache_options: dict[str, Any] | None = None
    prompt_cache_retention: only(
        lambda v: v == "in_memory",
        "only 'in_memory' is supported: prompt prefixes are cached in the workers' memory",
        {"const": "in_memory"},
    ) = None
    prediction: dict[str, Any] | None = None  # a speed hint only; the answer is the same
    service_tier: only(
        lambda v: v in ("auto", "default"),
        "only 'auto' and 'default' are supported: the mesh has one service tier",
        {"enum": ["auto", "default"]},
    ) = None
    store: only(
        lambda v: v is False, "stored completions are not supported (send false or omit)", _FALSE
    ) = None
    modalities: only(
        lambda v: v == ["text"], "only text output is supported: ['text']", {"const": ["text"]}
    ) = None
    verbosity: only(
        lambda v: v == "medium",
        "only 'medium' is supported: the models have no verbosity knob",
        {"const": "medium"},
    ) = None
    audio: unsupported("audio output is not supported") = None
    web_search_options: unsupported("web search is not supported") = None
    moderation: unsupported(
        "moderation settings are not supported: prompts pass the mesh's own security filter"
    ) = None
    functions: unsupported("deprecated: send 'tools' instead of 'functions'") = None
    function_call: unsupported("deprecated: send 'tool_choice' instead of 'function_call'") = None
