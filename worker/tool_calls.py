"""Tool calls out of the generated text, as the answer streams.

The model writes calls as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (see
worker.tool_prompt; the grammar of worker.tool_choice enforces it when a call is required or
started). `ToolCallParser` takes the decoded text deltas of one choice and gives back the text
outside calls plus `ToolCallDelta`s, as OpenAI streams `delta.tool_calls`: the call's index,
id (`call_<24 hex>`) and name first, as soon as the name is complete, then its arguments
object as the model writes it, fragment by fragment (the fragments joined are the object's
JSON text). Arguments written another way (a JSON string of an object, or before the name)
go out whole, re-serialised compactly, when the call closes. A marker split across deltas
(`<tool_` + `call>`) is held back until the next delta resolves it.

Whitespace that only separates calls (or leads into one) is not answer text: trailing
whitespace is held until more text follows, and dropped when a call follows or when the
answer made calls. An answer without calls comes out exactly as generated.

A `<tool_call>` block that does not parse as a call (free text, no grammar) stays text; a call
cut short (max_tokens, a stop string) keeps its name and gets the arguments written so far.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from mesh.pb import common_pb2, worker_pb2
from worker.tool_prompt import CALL_CLOSE, CALL_OPEN

# The call's name, when the model writes it first (the format the grammar enforces).
NAME_FIRST_RE = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*[,}]')
ARGUMENTS_KEY_RE = re.compile(r'"(?:arguments|parameters)"\s*:\s*')


def new_call_id() -> str:
    return f"call_{secrets.token_hex(12)}"


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for k in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


def parse_call(body: str) -> tuple[str, str] | None:
    """(name, compact JSON arguments) of a call's body, or None when it is not a call."""
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args: Any = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # some models write the arguments as a JSON string
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(args, dict):
        return None
    return obj["name"], json.dumps(args, ensure_ascii=False, separators=(",", ":"))


class _ObjectEnd:
    """Where a JSON object ends, fed piece by piece (strings and escapes aware)."""

    __slots__ = ("depth", "done", "escaped", "in_string")

    def __init__(self) -> None:
        self.depth, self.in_string, self.escaped, self.done = 0, False, False, False

    def scan(self, text: str) -> int:
        """How many characters of `text` belong to the object (all, until it closes)."""
        for i, ch in enumerate(text):
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = False
            elif ch == '"':
                self.in_string = True
            elif ch in "{[":
                self.depth += 1
            elif ch in "}]":
                self.depth -= 1
                if self.depth <= 0:
                    self.done = True
                    return i + 1
        return len(text)


class ToolCallParser:
    """One choice's text -> (text outside calls, ToolCallDelta list), delta by delta."""

    def __init__(self) -> None:
        self.num_calls = 0  # calls emitted so far (the next call's index)
        self._pending = ""  # outside: a possible partial `<tool_call>`; inside: the body so far
        self._scanned = 0  # inside: body characters already searched for `</tool_call>`
        self._inside = False
        self._ws = ""  # trailing whitespace held back
        self._ws_before = ""  # whitespace before the open call (text if it is not a call)
        self._start_call()

    def _start_call(self) -> None:
        self._named = False  # the call's id/name delta went out
        self._name_end = 0  # where the name ends in the body
        self._args_at: int | None = None  # where the arguments object starts; -1: not streamed
        self._args_sent = 0  # body index up to which argument text went out
        self._args_end = _ObjectEnd()

    def feed(self, text: str) -> tuple[str, list[common_pb2.ToolCallDelta]]:
        self._pending += text
        out: list[str] = []
        deltas: list[common_pb2.ToolCallDelta] = []
        while True:
            if self._inside:
                j = self._pending.find(CALL_CLOSE, self._scanned)
                if j < 0:
                    self._scanned = max(0, len(self._pending) - len(CALL_CLOSE) + 1)
                    self._progress(self._pending, deltas)
                    break
                self._close(self._pending[:j], out, deltas)
                self._pending = self._pending[j + len(CALL_CLOSE) :]
                continue
            i = self._pending.find(CALL_OPEN)
            if i < 0:
                keep = _partial_suffix(self._pending, CALL_OPEN)
                self._text(self._pending[: len(self._pending) - keep], out)
                self._pending = self._pending[len(self._pending) - keep :]
                break
            self._text(self._pending[:i], out)
            self._ws_before, self._ws = self._ws, ""  # whitespace leading into a call: not text
            self._pending = self._pending[i + len(CALL_OPEN) :]
            self._inside, self._scanned = True, 0
            self._start_call()
        return "".join(out), deltas

    def flush(self) -> tuple[str, list[common_pb2.ToolCallDelta]]:
        """End of the answer: a partial marker was text; a call cut short ends as it is."""
        out: list[str] = []
        deltas: list[common_pb2.ToolCallDelta] = []
        pending, self._pending = self._pending, ""
        if self._inside:
            self._inside = False
            self._progress(pending, deltas)
            if self._streamed:
                self._end_call("", deltas)
            elif self._named:
                match = ARGUMENTS_KEY_RE.search(pending, self._name_end)
                self._end_call(pending[match.end() :] if match else "", deltas)
            else:
                self._text(self._ws_before + CALL_OPEN + pending, out)
        else:
            self._text(pending, out)
        if not self.num_calls:
            out.append(self._ws)  # an answer without calls keeps its trailing whitespace
        self._ws = ""
        return "".join(out), deltas

    def _text(self, text: str, out: list[str]) -> None:
        if not text:
            return
        body = text.rstrip()
        if body:
            out.append(self._ws + body)
            self._ws = ""
        self._ws += text[len(body) :]

    @property
    def _streamed(self) -> bool:
        return self._args_at is not None and self._args_at >= 0

    def _progress(self, body: str, deltas: list[common_pb2.ToolCallDelta]) -> None:
        """The call's name once complete, then its arguments object as it grows."""
        if not self._named:
            match = NAME_FIRST_RE.match(body)
            if match is None:
                return
            try:
                name = json.loads(f'"{match.group(1)}"')
            except ValueError:
                return
            self._name_end = match.end()
            self._open(name, deltas)
        if self._args_at is None:
            match = ARGUMENTS_KEY_RE.search(body, self._name_end)
            if match is None or match.end() >= len(body):
                return
            # an object streams; anything else (a JSON string of one) goes whole at the close
            self._args_at = self._args_sent = match.end() if body[match.end()] == "{" else -1
        if self._streamed and not self._args_end.done:
            n = self._args_end.scan(body[self._args_sent :])
            if n:
                piece = body[self._args_sent : self._args_sent + n]
                deltas.append(common_pb2.ToolCallDelta(index=self.num_calls, arguments=piece))
                self._args_sent += n

    def _open(self, name: str, deltas: list[common_pb2.ToolCallDelta]) -> None:
        deltas.append(common_pb2.ToolCallDelta(index=self.num_calls, id=new_call_id(), name=name))
        self._named = True

    def _close(self, body: str, out: list[str], deltas: list[common_pb2.ToolCallDelta]) -> None:
        self._inside = False
        self._progress(body, deltas)
        if self._streamed:  # its arguments went out as they came
            self._end_call("", deltas)
            return
        parsed = parse_call(body)
        if parsed is None:
            if not self._named:  # not a call after all: it stays text
                self._text(self._ws_before + CALL_OPEN + body + CALL_CLOSE, out)
                return
            match = ARGUMENTS_KEY_RE.search(body, self._name_end)
            self._end_call(body[match.end() :].rstrip().removesuffix("}") if match else "", deltas)
            return
        name, arguments = parsed
        if not self._named:
            self._open(name, deltas)
        self._end_call(arguments, deltas)

    def _end_call(self, arguments: str, deltas: list[common_pb2.ToolCallDelta]) -> None:
        if arguments:
            deltas.append(common_pb2.ToolCallDelta(index=self.num_calls, arguments=arguments))
        self.num_calls += 1
        self._start_call()


class ToolCallStream:
    """Turns a Generate stream's text into tool calls, choice by choice (response.index).

    `apply` rewrites each GenerateResponse in place: `text` keeps what lies outside calls,
    `tool_calls` gets the deltas, and a choice that made calls and stopped normally ends with
    FINISH_REASON_TOOL_CALLS."""

    def __init__(self) -> None:
        self._parsers: dict[int, ToolCallParser] = {}

    def apply(self, response: worker_pb2.GenerateResponse) -> worker_pb2.GenerateResponse:
        parser = self._parsers.get(response.index)
        if parser is None:
            parser = self._parsers[response.index] = ToolCallParser()
        text, deltas = parser.feed(response.text)
        if response.finish_reason != common_pb2.FINISH_REASON_UNSPECIFIED:
            more_text, more = parser.flush()
            text, deltas = text + more_text, deltas + more
            if parser.num_calls and response.finish_reason == common_pb2.FINISH_REASON_STOP:
                response.finish_reason = common_pb2.FINISH_REASON_TOOL_CALLS
        response.text = text
        response.tool_calls.extend(deltas)
        return response
