"""Malformed and hostile request bodies for the edge (issue #14.2): the suite's table test
and the outside measurement (`python -m tests.mesh.edge.adversarial URL`) share them.

Each case is (name, path, raw body bytes). None may get a 5xx or a dropped connection;
every 4xx must be an OpenAI error object.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

MSG = [{"role": "user", "content": "hi"}]
BASE = {
    "/v1/chat/completions": {"model": "ok", "messages": MSG},
    "/v1/completions": {"model": "ok", "prompt": "once"},
    "/v1/embeddings": {"model": "ok", "input": "x"},
}
SAMPLING = [
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "stream",
    "stream_options",
    "ignore_eos",
    "user",
]
FIELDS = {
    "/v1/chat/completions": ["model", "messages", *SAMPLING],
    "/v1/completions": ["model", "prompt", *SAMPLING],
    "/v1/embeddings": ["model", "input", "encoding_format", "dimensions", "user"],
}
# Raw JSON values (text): wrong types, values past every proto integer range, non-finite
# numbers, lone surrogates, huge strings and integers, nesting.
VALUES = [
    '"x"',
    "1",
    "-1",
    "0",
    "1.5",
    "true",
    "[]",
    "{}",
    "[1]",
    '{"a": 1}',
    str(2**31),
    str(2**63),
    str(2**64),
    str(-(2**70)),
    "1" * 400,
    "1e400",
    "-1e400",
    '"99999999999999999999"',
    '"\\ud800"',
    '["\\udfff"]',
    '[{"type": "text", "text": "\\ud800"}]',
    '"' + "m" * 1_000_000 + '"',
    "[" * 50 + "]" * 50,
]
MESSAGE_FIELDS = {
    "role": ['"wizard"', "1", '"\\ud800"', "null"],
    "content": ['"\\ud800x"', "5", '[{"type": "image_url"}]', '[{"type": "text", "text": 5}]'],
    "name": ['"\\udc00"', "7", '"' + "n" * 100_000 + '"'],
}


def _with(body: dict[str, Any], key: str, raw_value: str) -> bytes:
    marker = "__VALUE__"
    text = json.dumps({**body, key: marker})
    return text.replace(json.dumps(marker), raw_value).encode()


def cases(model: str | None = None) -> Iterator[tuple[str, str, bytes]]:
    """With `model` (a served one), bodies that pass validation reach a real worker, capped
    at one generated token."""
    base = BASE
    if model:
        base = {p: {**b, "model": model} for p, b in BASE.items()}
        for p in ("/v1/chat/completions", "/v1/completions"):
            base[p]["max_tokens"] = 1
    for path, fields in FIELDS.items():
        for field in fields:
            for i, value in enumerate(VALUES):
                yield f"{path} {field}=V{i}", path, _with(base[path], field, value)
    chat = "/v1/chat/completions"
    for field, values in MESSAGE_FIELDS.items():
        for i, value in enumerate(values):
            msg = json.dumps({"role": "user", "content": "hi", field: "__VALUE__"})
            body = json.dumps({"model": "ok", "messages": ["__MSG__"]})
            raw = body.replace('"__MSG__"', msg.replace('"__VALUE__"', value))
            yield f"{chat} messages[0].{field}=M{i}", chat, raw.encode()
    for path in BASE:
        yield from _raw_bodies(path)


def _raw_bodies(path: str) -> Iterator[tuple[str, str, bytes]]:
    yield f"{path} empty", path, b""
    yield f"{path} not-utf8", path, b'{"model": "\xff\xfe\xfa"}'
    yield f"{path} utf16-bom", path, b"\xff\xfe{\x00}\x00"
    yield f"{path} nul-bytes", path, b"\x00" * 64
    for i, top in enumerate(["[]", '"x"', "1", "null", "true", "[{}]"]):
        yield f"{path} top-level-{i}", path, top.encode()
    yield f"{path} nest-array-100k", path, b"[" * 100_000
    yield f"{path} nest-object-100k", path, b'{"a":' * 100_000
    yield (
        f"{path} nest-in-field",
        path,
        b'{"model": "ok", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    )
    yield f"{path} nan", path, b'{"model": "ok", "temperature": NaN}'
    yield f"{path} int-5000-digits", path, b'{"model": "ok", "seed": ' + b"9" * 5000 + b"}"
    yield f"{path} truncated", path, json.dumps(BASE[path]).encode()[:-3]
    yield f"{path} duplicate-keys", path, b'{"model": "a", "model": 1}'
    yield f"{path} 20MB", path, _with(BASE[path], "user", '"' + "u" * 20_000_000 + '"')


def check(status: int, body: bytes) -> str | None:
    """None if acceptable, else what is wrong."""
    if status >= 500:
        return f"{status}"
    if 400 <= status < 500:
        try:
            error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            return f"{status} without an OpenAI error object"
        if not isinstance(error, dict) or set(error) != {"message", "type", "param", "code"}:
            return f"{status} error object has keys {sorted(error)}"
    return None


def main(base_url: str, api_key: str = "sk-adversarial", model: str | None = None) -> int:
    """Sends every case to a running edge; prints the counts; exit 1 on any failure."""
    import httpx  # noqa: PLC0415

    counts: dict[str, int] = {}
    failures = []
    headers = {"Authorization": f"Bearer {api_key}", "content-type": "application/json"}
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for name, path, raw in cases(model):
            try:
                r = client.post(path, content=raw, headers=headers)
            except httpx.HTTPError as exc:
                failures.append(f"{name}: {type(exc).__name__}")
                counts["connection error"] = counts.get("connection error", 0) + 1
                continue
            counts[str(r.status_code)] = counts.get(str(r.status_code), 0) + 1
            if (problem := check(r.status_code, r.content)) is not None:
                failures.append(f"{name}: {problem}")
    total = sum(counts.values())
    print(f"{total} requests: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    for failure in failures[:50]:
        print("FAIL", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
