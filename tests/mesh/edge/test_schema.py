"""OpenAI JSON validation: every bad input is a 400 naming the offending `param`."""

from __future__ import annotations

import base64
import struct

import pytest

from mesh.edge import openai_schema as schema
from mesh.errors import InvalidRequest
from mesh.pb import inference_pb2

MSG = [{"role": "user", "content": "hi"}]


def chat(**fields):
    return schema.chat_request({"model": "m:1b", "messages": MSG, **fields})


def param_of(fn, *args) -> str | None:
    with pytest.raises(InvalidRequest) as info:
        fn(*args)
    assert info.value.http_status == 400
    return info.value.param


def test_valid_chat_maps_to_the_proto():
    call = chat(
        temperature=0,
        top_p=0.5,
        max_tokens=12,
        stop="END",
        seed=7,
        user="u1",
        stream=True,
        stream_options={"include_usage": True},
        unknown_field={"ignored": True},
    )
    req = call.request
    assert (req.model, req.user, req.messages[0].role, req.messages[0].content) == (
        "m:1b",
        "u1",
        "user",
        "hi",
    )
    s = req.sampling
    assert (s.temperature, s.top_p, s.max_tokens, list(s.stop), s.seed) == (0, 0.5, 12, ["END"], 7)
    assert call.options == schema.StreamOptions(stream=True, include_usage=True)


def test_defaults_and_content_parts():
    call = chat(
        messages=[
            {
                "role": "developer",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            }
        ]
    )
    msg = call.request.messages[0]
    assert (msg.role, msg.content) == ("system", "ab")
    s = call.request.sampling
    # Unset sampling knobs stay unset: the worker applies the model's recommended defaults.
    assert (s.HasField("temperature"), s.HasField("top_p"), s.max_tokens, s.HasField("seed")) == (
        False,
        False,
        0,
        False,
    )
    assert call.options == schema.StreamOptions()


def test_max_completion_tokens_wins_and_nulls_mean_absent():
    assert chat(max_tokens=5, max_completion_tokens=9).request.sampling.max_tokens == 9
    assert not chat(temperature=None, stop=None, n=None, stream=None).request.sampling.HasField(
        "temperature"
    )


def test_ignore_eos_extension():
    assert chat(ignore_eos=True).request.sampling.ignore_eos is True
    assert chat().request.sampling.ignore_eos is False
    assert (
        param_of(schema.chat_request, {"model": "m", "messages": MSG, "ignore_eos": "yes"})
        == "ignore_eos"
    )


def test_malformed_json_is_400():
    assert param_of(schema.parse_json, b"{bad") is None
    assert param_of(schema.parse_json, b"[1, 2]") is None
    assert param_of(schema.parse_json, b"\xff\xfe") is None


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": MSG}, "model"),
        ({"model": 3, "messages": MSG}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": "hi"}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
        ),
        ({"model": "m", "messages": MSG, "temperature": 2.5}, "temperature"),
        ({"model": "m", "messages": MSG, "temperature": "hot"}, "temperature"),
        ({"model": "m", "messages": MSG, "top_p": 1.5}, "top_p"),
        ({"model": "m", "messages": MSG, "max_tokens": 0}, "max_tokens"),
        ({"model": "m", "messages": MSG, "max_tokens": 1.5}, "max_tokens"),
        ({"model": "m", "messages": MSG, "max_tokens": True}, "max_tokens"),
        ({"model": "m", "messages": MSG, "max_completion_tokens": -1}, "max_completion_tokens"),
        ({"model": "m", "messages": MSG, "n": 17}, "n"),
        ({"model": "m", "messages": MSG, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": "m", "messages": MSG, "stop": [1]}, "stop[0]"),
        ({"model": "m", "messages": MSG, "stream": "yes"}, "stream"),
        (
            {"model": "m", "messages": MSG, "stream": True, "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
        ),
        ({"model": "m", "messages": MSG, "seed": "x"}, "seed"),
        ({"model": "m", "messages": MSG, "user": 5}, "user"),
    ],
)
def test_invalid_chat_fields_name_their_param(body, param):
    assert param_of(schema.chat_request, body) == param


def test_completion_prompt_forms():
    assert schema.completion_request({"model": "m", "prompt": ["once"]}).request.prompt == "once"
    req = schema.completion_request({"model": "m", "prompt": "once"}).request
    assert req.sampling.max_tokens == schema.COMPLETIONS_DEFAULT_MAX_TOKENS
    assert param_of(schema.completion_request, {"model": "m", "prompt": ["a", "b"]}) == "prompt"
    assert param_of(schema.completion_request, {"model": "m"}) == "prompt"


def test_embeddings_validation():
    call = schema.embeddings_request({"model": "e", "input": "x", "encoding_format": "base64"})
    assert (list(call.request.inputs), call.encoding_format) == (["x"], "base64")
    assert (
        param_of(schema.embeddings_request, {"model": "e", "input": "x", "dimensions": 8})
        == "dimensions"
    )
    assert param_of(schema.embeddings_request, {"model": "e", "input": [1, 2]}) == "input[0]"
    assert param_of(schema.embeddings_request, {"model": "e", "input": []}) == "input"
    assert (
        param_of(schema.embeddings_request, {"model": "e", "input": "x", "encoding_format": "hex"})
        == "encoding_format"
    )


def test_embeddings_base64_is_little_endian_float32():
    reply = inference_pb2.EmbeddingsResponse(
        model="e", data=[inference_pb2.EmbeddingVector(values=[1.0, -2.5])]
    )
    encoded = schema.embeddings_json(reply, "base64")["data"][0]["embedding"]
    assert struct.unpack("<2f", base64.b64decode(encoded)) == (1.0, -2.5)
