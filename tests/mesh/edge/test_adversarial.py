"""Hostile bodies against a real edge (issue #14.2): 0 x 5xx, 0 dropped connections, every
4xx an OpenAI error object naming what is wrong; oversize bodies 413."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.mesh.edge import adversarial

pytestmark = pytest.mark.timeout(240)

AUTH = {"Authorization": "Bearer sk-test", "content-type": "application/json"}


@pytest.fixture
def edge(edge_factory):
    base, router = edge_factory()
    with httpx.Client(base_url=base, timeout=60, headers=AUTH) as client:
        yield client, router


def test_every_adversarial_body_gets_a_clear_answer(edge):
    client, _ = edge
    failures, statuses = [], {}
    for name, path, raw in adversarial.cases():
        try:
            r = client.post(path, content=raw)
        except httpx.HTTPError as exc:  # a dropped or reset connection
            failures.append(f"{name}: {type(exc).__name__}")
            continue
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if (problem := adversarial.check(r.status_code, r.content)) is not None:
            failures.append(f"{name}: {problem}")
        if name.endswith("20MB"):
            assert r.status_code == 413, name
    assert not failures, failures[:20]
    assert set(statuses) <= {200, 400, 413}, statuses


def post(client, path, raw: str | bytes):
    r = client.post(path, content=raw)
    assert r.status_code == 400, r.text[:300]
    return r.json()["error"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", 2**31),
        ("max_tokens", 2**63),
        ("max_completion_tokens", 2**64),
        ("top_k", -(2**70)),
        ("top_k", 2**31),
        ("seed", 2**63),
        ("seed", -(2**63) - 1),
        ("n", 2**64),
        ("max_tokens", "99999999999999999999"),
        ("seed", "7"),
    ],
)
def test_integers_outside_their_proto_field_are_400(edge, field, value):
    client, router = edge
    body = {"model": "ok", "messages": adversarial.MSG, field: value}
    assert post(client, "/v1/chat/completions", json.dumps(body))["param"] == field
    assert router.calls == 0


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", '{"model": "\\ud800", "messages": []}', "model"),
        (
            "/v1/chat/completions",
            '{"model": "ok", "messages": [{"role": "user", "content": "a\\udfffb"}]}',
            "messages[0].content",
        ),
        (
            "/v1/chat/completions",
            '{"model": "ok", "messages": [{"role": "user", "content": "a"}], "user": "\\ud800"}',
            "user",
        ),
        (
            "/v1/chat/completions",
            '{"model": "ok", "messages": [{"role": "user", "content": "a"}], "stop": ["\\ud800"]}',
            "stop[0]",
        ),
        ("/v1/completions", '{"model": "ok", "prompt": "\\udc00"}', "prompt"),
        ("/v1/embeddings", '{"model": "ok", "input": ["a", "\\ud800"]}', "input[1]"),
    ],
)
def test_lone_surrogates_are_400_naming_the_field(edge, path, body, param):
    client, router = edge
    error = post(client, path, body)
    assert error["param"] == param and "surrogate" in error["message"]
    assert router.calls == 0


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"a":' * 100_000, b"", b"\xff\xfe\xfa", b"[1]", b"1e400", b"NaN"],
)
def test_unparseable_or_non_object_bodies_are_400_invalid_json(edge, raw):
    client, _ = edge
    assert post(client, "/v1/chat/completions", raw)["code"] == "invalid_json"


def test_non_finite_numbers_are_400(edge):
    client, _ = edge
    raw = '{"model": "ok", "messages": [{"role": "user", "content": "a"}], "temperature": 1e400}'
    assert post(client, "/v1/chat/completions", raw)["param"] == "temperature"
