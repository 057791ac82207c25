"""Edge limits (issue #14.3): body size (413), body and header time (408), header size (431),
the Authorization header and `model` never forwarded when absurd, and the published
OpenAPI document. Against a real uvicorn with the production protocol and middleware."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from mesh.edge.app import create_app
from mesh.edge.config import EdgeConfig
from mesh.edge.limits import BodyLimitMiddleware
from mesh.edge.openapi import DOCUMENT_PATH

pytestmark = pytest.mark.timeout(60)

AUTH = {"Authorization": "Bearer sk-test"}
MSG = [{"role": "user", "content": "hi"}]


def is_error_object(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text[:300]
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code:
        assert error["code"] == code
    return error


def raw_exchange(base: str, data: bytes, *, read_timeout_s: float = 20.0) -> bytes:
    """Sends raw bytes, then reads until the server closes (or answers and idles)."""
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=read_timeout_s) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"}}" in chunk:
                break
        return b"".join(chunks)


def test_declared_oversize_body_is_413_before_the_body_is_sent(edge_factory):
    base, router = edge_factory(max_body_bytes=64 * 1024)
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: 1000000000\r\n\r\n"
    )
    reply = raw_exchange(base, head)  # no body at all: the answer cannot wait for it
    assert reply.startswith(b"HTTP/1.1 413 ")
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "request_too_large" and "65536" in body["error"]["message"]
    assert router.calls == 0


def test_chunked_body_is_cut_at_the_limit(edge_factory):
    base, router = edge_factory(max_body_bytes=64 * 1024)
    sent = []

    def chunks():
        for _ in range(1000):  # 16 MB offered, the edge stops reading after 64 KiB
            sent.append(1)
            yield b" " * 16384

    r = httpx.post(f"{base}/v1/chat/completions", content=chunks(), headers=AUTH, timeout=30)
    is_error_object(r, 413, "request_too_large")
    assert router.calls == 0


def test_a_20_mb_body_is_413_and_the_connection_survives(edge_factory):
    base, _ = edge_factory()  # the default limit, 8 MiB
    body = json.dumps({"model": "ok", "messages": [{"role": "user", "content": "x" * 20_000_000}]})
    with httpx.Client(base_url=base, timeout=60) as client:
        is_error_object(client.post("/v1/chat/completions", content=body, headers=AUTH), 413)
        # The same connection (keep-alive) still serves the next request.
        r = client.post("/v1/chat/completions", json={"model": "ok", "messages": MSG}, headers=AUTH)
        assert r.is_success


def test_a_trickled_body_is_408(edge_factory):
    base, router = edge_factory(body_timeout_s=0.2)
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"
    reply = raw_exchange(base, head)  # 99 bytes never come
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"request_timeout" in reply and b"connection: close" in reply.lower()
    assert router.calls == 0


def test_slow_headers_are_408_and_closed(edge_factory):
    base, _ = edge_factory(header_timeout_s=0.2)
    reply = raw_exchange(base, b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")
    assert reply.startswith(b"HTTP/1.1 408 ") and b"LLMAAS_HEADER_TIMEOUT_S" in reply


def test_oversized_headers_are_431(edge_factory):
    base, _ = edge_factory(max_header_bytes=4096)
    r = httpx.get(f"{base}/health", headers={"x-junk": "a" * 8192})
    is_error_object(r, 431, "request_header_fields_too_large")
    assert httpx.get(f"{base}/health", headers={"x-ok": "a" * 1024}).status_code == 200


def test_an_absurd_authorization_header_is_401_and_not_forwarded(edge_factory):
    base, router = edge_factory()
    headers = {"Authorization": "Bearer " + "k" * 2000}
    for method, path, body in (
        ("POST", "/v1/chat/completions", {"model": "ok", "messages": MSG}),
        ("POST", "/v1/embeddings", {"model": "ok", "input": "x"}),
        ("GET", "/v1/models", None),
    ):
        r = httpx.request(method, f"{base}{path}", json=body, headers=headers)
        assert "1024" in is_error_object(r, 401, "invalid_api_key")["message"]
    assert router.calls == 0


@pytest.mark.parametrize("size", [257, 1_000_000])
def test_a_long_model_is_400_before_the_router(edge_factory, size):
    base, router = edge_factory()
    r = httpx.post(
        f"{base}/v1/chat/completions", json={"model": "m" * size, "messages": MSG}, headers=AUTH
    )
    assert is_error_object(r, 400)["param"] == "model"
    r = httpx.get(f"{base}/v1/models/{'m' * min(size, 4096)}", headers=AUTH)
    assert is_error_object(r, 404, "model_not_found")["param"] == "model"
    assert router.calls == 0


async def test_the_body_timeout_is_a_deadline_for_the_whole_body():
    """ASGI level: a client whose next chunk never comes is answered 408, not waited for."""

    async def app(scope, receive, send):
        while (await receive()).get("more_body"):
            pass

    first = [{"type": "http.request", "body": b"{", "more_body": True}]

    async def receive():
        if first:
            return first.pop()
        await __import__("asyncio").Event().wait()  # never

    sent = []

    async def send(message):
        sent.append(message)

    middleware = BodyLimitMiddleware(app, max_body_bytes=1024, body_timeout_s=0.05)
    await middleware({"type": "http", "headers": []}, receive, send)
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_timeout"


def test_openapi_is_served_and_equals_the_file_in_the_repository():
    app = create_app(EdgeConfig(router_address="127.0.0.1:1", port=8000))
    with TestClient(app) as client:
        served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(DOCUMENT_PATH.read_text()), (
        "mesh/edge/openapi.json is stale: python -m mesh.edge.openapi > mesh/edge/openapi.json"
    )
    paths = served.json()["paths"]
    assert {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models"} <= set(paths)
    chat = served.json()["components"]["schemas"]["ChatCompletionRequest"]
    assert chat["properties"]["max_tokens"]["anyOf"][0]["maximum"] == 2**31 - 1


def test_concurrent_connections_are_capped(edge_factory):
    base, _ = edge_factory(limit_concurrency=2)
    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=20) as held:
        held.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        assert held.recv(65536).startswith(b"HTTP/1.1 200 ")  # kept alive: one connection
        refused = httpx.get(f"{base}/health")  # the second connection is refused
        assert is_error_object(refused, 503, "server_overloaded") and refused.headers["retry-after"]


def test_limits_come_from_the_environment():
    config = EdgeConfig.from_env(
        {
            "LLMAAS_MAX_BODY_BYTES": "2048",
            "LLMAAS_BODY_TIMEOUT_S": "7",
            "LLMAAS_HEADER_TIMEOUT_S": "3",
            "LLMAAS_MAX_HEADER_BYTES": "4096",
            "LLMAAS_HTTP_LIMIT_CONCURRENCY": "9",
            "LLMAAS_HTTP_KEEP_ALIVE_S": "2",
            "LLMAAS_CONFIG": "/dev/null",
        }
    )
    assert (
        config.max_body_bytes,
        config.body_timeout_s,
        config.header_timeout_s,
        config.max_header_bytes,
        config.limit_concurrency,
        config.keep_alive_s,
    ) == (2048, 7.0, 3.0, 4096, 9, 2.0)
    defaults = EdgeConfig.from_env({"LLMAAS_CONFIG": "/dev/null"})
    assert (defaults.max_body_bytes, defaults.body_timeout_s) == (8 * 1024 * 1024, 30.0)
