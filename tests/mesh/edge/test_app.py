"""The HTTP edge against a fake router (sync gRPC server in threads), through TestClient."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from mesh.edge.app import create_app
from mesh.edge.config import EdgeConfig
from tests.mesh.edge.fakes import fake_router

pytestmark = pytest.mark.timeout(30)

AUTH = {"Authorization": "Bearer sk-test"}


@pytest.fixture
def router():
    with fake_router() as fake:
        yield fake


@pytest.fixture
def client(router):
    app = create_app(EdgeConfig(router_address=f"127.0.0.1:{router.port}", port=8000))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def post_chat(client, model="ok", **fields):
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **fields}
    return client.post("/v1/chat/completions", json=body, headers=AUTH)


def test_chat_completion_json_headers_and_metadata(client, router):
    r = client.post(
        "/v1/chat/completions",
        headers={**AUTH, "x-request-id": "abc", "traceparent": "00-x-y-01"},
        json={"model": "ok", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == "chatcmpl-r1" and body["object"] == "chat.completion"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello", "refusal": None},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert body["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 2,
        "total_tokens": 7,
        "completion_tokens_details": {"reasoning_tokens": 0},
        "prompt_tokens_details": {"cached_tokens": 1},
    }
    assert r.headers["x-request-id"] == "abc"
    assert r.headers["x-ratelimit-remaining-requests"] == "41" and r.headers["sunset"]
    assert (r.headers["x-llmaas-cost-eur"], r.headers["x-llmaas-energy-kwh"]) == (
        "0.0000125",
        "0.0000001",
    )
    md = router.metadata
    assert (md["authorization"], md["x-request-id"], md["traceparent"]) == (
        "Bearer sk-test",
        "abc",
        "00-x-y-01",
    )


def test_request_id_is_generated_when_missing(client, router):
    r = post_chat(client)
    assert (
        len(r.headers["x-request-id"]) == 32
        and router.metadata["x-request-id"] == r.headers["x-request-id"]
    )


def sse_events(text: str) -> list:
    assert text.endswith("\n\n")
    frames = text.strip("\n").split("\n\n")
    return [f.removeprefix("data: ") for f in frames]


def test_streaming_sse_framing_and_usage_chunk(client):
    r = post_chat(client, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-ratelimit-remaining-requests"] == "41"
    frames = sse_events(r.text)
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        == "Hello"
    )
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-r1" for c in chunks)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["usage"] is None
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 7


def test_streaming_without_include_usage_has_no_usage_chunk(client):
    frames = sse_events(post_chat(client, stream=True).text)
    assert all(json.loads(f)["choices"] for f in frames[:-1])


def test_mid_stream_failure_emits_an_error_event_and_ends(client):
    r = post_chat(client, model="midfail", stream=True)
    frames = sse_events(r.text)
    assert r.status_code == 200 and frames[-1] != "[DONE]"
    error = json.loads(frames[-1])["error"]
    assert error["type"] == "service_unavailable" and "worker died" in error["message"]


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("e401", 401, "invalid_api_key"),
        ("e403", 403, "model_not_allowed"),
        ("e404", 404, "model_not_found"),
        ("e410", 410, "model_retired"),
        ("e429", 429, "rate_limit_exceeded"),
        ("e503", 503, "model_unavailable"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_router_errors_become_openai_errors(client, model, status, code, stream):
    r = post_chat(client, model=model, stream=stream)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code and set(err) == {"message", "type", "param", "code"}
    assert r.headers["x-request-id"]
    if status == 429:
        assert (
            r.headers["retry-after"] == "3" and r.headers["x-ratelimit-remaining-requests"] == "0"
        )
    if status == 503:
        assert r.headers["retry-after"] == "5"


def test_bad_input_is_400_not_500(client):
    r = client.post("/v1/chat/completions", content=b"{nope", headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = client.post("/v1/chat/completions", json={"model": "ok"}, headers=AUTH)
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"


def test_unknown_route_and_wrong_method(client):
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    r = client.get("/v1/chat/completions")
    assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"
    assert r.headers["x-request-id"]


def test_completions_and_embeddings(client):
    r = client.post("/v1/completions", json={"model": "ok", "prompt": "Once"}, headers=AUTH)
    assert r.json()["object"] == "text_completion" and r.json()["choices"][0]["text"] == "Hello"
    r = client.post("/v1/embeddings", json={"model": "emb", "input": ["a", "b"]}, headers=AUTH)
    body = r.json()
    assert [d["embedding"] for d in body["data"]] == [[0.5], [0.5]] and body["usage"][
        "prompt_tokens"
    ] == 2
    r = client.post(
        "/v1/embeddings", json={"model": "emb", "input": "a", "dimensions": 3}, headers=AUTH
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "dimensions"


def test_models_routes_match_ids_with_colons(client):
    r = client.get("/v1/models", headers=AUTH)
    assert r.json()["data"][0]["id"] == "smollm2:135m" and r.json()["object"] == "list"
    r = client.get("/v1/models/smollm2:135m", headers=AUTH)
    assert r.status_code == 200 and r.json()["owned_by"] == "HF"
    assert client.get("/v1/models/zzz:1b", headers=AUTH).status_code == 404


def test_health_reports_components(client, router):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["models"] == {"smollm2:135m": "SERVING"}
    router.health.model_ok = False
    r = client.get("/health")
    assert r.status_code == 503 and r.json()["models"]["smollm2:135m"] == "NOT_SERVING"


def test_router_down_is_503(router):
    app = create_app(EdgeConfig(router_address="127.0.0.1:1", port=8000))
    with TestClient(app) as c:
        assert c.get("/health").status_code == 503
        r = post_chat(c)
        assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable"
