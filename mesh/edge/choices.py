"""The choices of an answer in OpenAI's shapes: assembled from the router's chunks for a
JSON answer (`Answer`), and the pieces a streamed chunk carries (logprobs, tool calls).

Chat logprobs: `{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}`;
legacy completions: `{"tokens", "token_logprobs", "top_logprobs": [{token: logprob}],
"text_offset"}`. Tool calls: `{"id", "type": "function", "function": {"name",
"arguments"}}`, streamed as `{"index", "id", "type", "function": {"name", "arguments": ""}}`
first, then `{"index", "function": {"arguments": fragment}}`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mesh.edge.openai_schema import finish_reason, reasoning_fields, usage_json
from mesh.pb import common_pb2, inference_pb2

# -- logprobs -----------------------------------------------------------------------------


def _token_bytes(token: common_pb2.TokenLogprob | common_pb2.TopLogprob) -> list[int]:
    return list(token.bytes or token.token.encode())


def chat_logprobs(tokens: Sequence[common_pb2.TokenLogprob]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": _token_bytes(t),
                "top_logprobs": [
                    {"token": a.token, "logprob": a.logprob, "bytes": _token_bytes(a)}
                    for a in t.top_logprobs
                ],
            }
            for t in tokens
        ],
        "refusal": None,
    }


class TextOffsets:
    """`text_offset` of legacy completions: where each token starts in the choice's text,
    in characters (a token that ends inside a character counts once the character is whole)."""

    def __init__(self) -> None:
        self._chars = 0

    def logprobs(self, text: str, tokens: Sequence[common_pb2.TokenLogprob]) -> dict[str, Any]:
        # Text before the tokens' own (the echoed prompt) comes first in the chunk.
        own = b"".join(t.bytes or t.token.encode() for t in tokens)
        start = self._chars + max(0, len(text) - len(own.decode("utf-8", "ignore")))
        offsets, done = [], b""
        for t in tokens:
            offsets.append(start + len(done.decode("utf-8", "ignore")))
            done += t.bytes or t.token.encode()
        self._chars += len(text)
        return {
            "tokens": [t.token for t in tokens],
            "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [{a.token: a.logprob for a in t.top_logprobs} for t in tokens],
            "text_offset": offsets,
        }


# -- tool calls ---------------------------------------------------------------------------


def tool_call_deltas(deltas: Sequence[common_pb2.ToolCallDelta]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for d in deltas:
        if d.id:
            fn = {"name": d.name, "arguments": d.arguments}
            out.append({"index": d.index, "id": d.id, "type": "function", "function": fn})
        else:
            out.append({"index": d.index, "function": {"arguments": d.arguments}})
    return out


# -- a whole answer -----------------------------------------------------------------------


@dataclass(slots=True)
class Choice:
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    logprobs: list[common_pb2.TokenLogprob] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish: int = 0

    def add(self, chunk: inference_pb2.CompletionChunk) -> None:
        self.text.append(chunk.text)
        self.reasoning.append(chunk.reasoning_text)
        self.logprobs.extend(chunk.logprobs)
        for d in chunk.tool_calls:
            call = self.calls.setdefault(
                d.index, {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            call["id"] = d.id or call["id"]
            call["function"]["name"] = d.name or call["function"]["name"]
            call["function"]["arguments"] += d.arguments
        self.finish = chunk.finish_reason or self.finish


class Answer:
    """The n choices of a JSON answer, from the router's chunks; `last` carries usage."""

    def __init__(self, n: int, logprobs: bool) -> None:
        self.choices = [Choice() for _ in range(max(1, n))]
        self.logprobs = logprobs
        self.finished = 0
        self.last: inference_pb2.CompletionChunk | None = None

    def add(self, chunk: inference_pb2.CompletionChunk) -> bool:
        """Adds a chunk; True once every choice finished."""
        if not 0 <= chunk.index < len(self.choices):
            raise ValueError(f"the router sent choice {chunk.index} of {len(self.choices)}")
        self.choices[chunk.index].add(chunk)
        self.last = chunk
        self.finished += bool(chunk.finish_reason)
        return self.finished >= len(self.choices)

    def chat_json(self, first: inference_pb2.CompletionChunk) -> dict[str, Any]:
        choices = []
        for i, c in enumerate(self.choices):
            calls = [c.calls[k] for k in sorted(c.calls)]
            text = "".join(c.text)
            message: dict[str, Any] = {
                "role": "assistant",
                # OpenAI's shape: null content when the answer is only calls.
                "content": None if calls and not text else text,
                "refusal": None,
                **reasoning_fields("".join(c.reasoning)),
            }
            if calls:
                message["tool_calls"] = calls
            choices.append(
                {
                    "index": i,
                    "message": message,
                    "finish_reason": finish_reason(c.finish),
                    "logprobs": chat_logprobs(c.logprobs) if self.logprobs else None,
                }
            )
        return self._json(f"chatcmpl-{first.id}", "chat.completion", first, choices)

    def text_json(self, first: inference_pb2.CompletionChunk) -> dict[str, Any]:
        choices = []
        for i, c in enumerate(self.choices):
            text = "".join(c.text)
            logprobs = TextOffsets().logprobs(text, c.logprobs) if self.logprobs else None
            choices.append(
                {
                    "index": i,
                    "text": text,
                    "finish_reason": finish_reason(c.finish),
                    "logprobs": logprobs,
                    **reasoning_fields("".join(c.reasoning)),
                }
            )
        return self._json(f"cmpl-{first.id}", "text_completion", first, choices)

    def _json(
        self, id_: str, kind: str, first: inference_pb2.CompletionChunk, choices: list
    ) -> dict[str, Any]:
        last = self.last or first
        return {
            "id": id_,
            "object": kind,
            "created": first.created,
            "model": first.model,
            "choices": choices,
            "usage": usage_json(last.usage),
        }
