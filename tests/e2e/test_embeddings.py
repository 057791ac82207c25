"""End to end: `POST /v1/embeddings` served by the embedding worker that `make run` starts
(all-minilm:22m, real weights), through router and edge, driven by the `openai` SDK."""

from __future__ import annotations

import base64
import math
import struct
from decimal import Decimal

import grpc
import httpx
import openai
import pytest

from mesh.pb import admin_pb2, admin_pb2_grpc
from tools.run_mesh import MeshHandle, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MODEL = "all-minilm:22m"
A = "The cat sits on the mat."
A_PARAPHRASE = "A cat is sitting on the rug."
UNRELATED = "Quarterly interest rates rose by two percent."


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> MeshHandle:
    # No chat worker: this module only needs the embedding worker (saves a model load).
    handle = start_mesh(
        workers=0, embeddings=True, run_dir=tmp_path_factory.mktemp("mesh"), ready_timeout_s=240
    )
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def client(mesh) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{mesh.url}/v1", api_key=mesh.api_key, max_retries=0, timeout=60)


def _post(mesh: MeshHandle, body: dict) -> httpx.Response:
    return httpx.post(
        f"{mesh.url}/v1/embeddings",
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {mesh.api_key}"},
    )


def cosine(u: list[float], v: list[float]) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)))


def test_health_waits_for_the_embedding_worker(mesh):
    body = httpx.get(f"{mesh.url}/health", timeout=5).json()
    assert body["status"] == "ok" and body["models"][MODEL] == "SERVING"
    assert (mesh.run_dir / "embed-1.pid").exists()


def test_sdk_returns_384_dim_vectors_with_usage(client):
    reply = client.embeddings.create(model=MODEL, input=[A, A_PARAPHRASE, UNRELATED])
    assert reply.model == MODEL and [d.index for d in reply.data] == [0, 1, 2]
    assert all(len(d.embedding) == 384 for d in reply.data)
    assert reply.usage.prompt_tokens > 0 and reply.usage.total_tokens == reply.usage.prompt_tokens
    vecs = [d.embedding for d in reply.data]
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-4 for v in vecs)  # L2-normalised
    similar, unrelated = cosine(vecs[0], vecs[1]), cosine(vecs[0], vecs[2])
    assert similar > unrelated + 0.2, (similar, unrelated)


def test_same_text_twice_gives_identical_vectors(client):
    one = client.embeddings.create(model=MODEL, input=A).data[0].embedding
    assert client.embeddings.create(model=MODEL, input=A).data[0].embedding == one  # bit for bit
    # Batched with other texts (padding, another matmul shape) it is the same up to float noise.
    batched = client.embeddings.create(model=MODEL, input=[UNRELATED, A]).data[1].embedding
    assert max(abs(x - y) for x, y in zip(one, batched, strict=True)) < 1e-5
    assert cosine(one, batched) > 0.99999


def test_base64_decodes_to_the_same_floats_and_cost_headers(mesh):
    floats = _post(mesh, {"model": MODEL, "input": A, "encoding_format": "float"})
    encoded = _post(mesh, {"model": MODEL, "input": A, "encoding_format": "base64"})
    assert floats.status_code == encoded.status_code == 200
    raw = base64.b64decode(encoded.json()["data"][0]["embedding"])
    decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    as_float32 = list(
        struct.unpack("<384f", struct.pack("<384f", *floats.json()["data"][0]["embedding"]))
    )
    assert decoded == as_float32
    tokens = floats.json()["usage"]["prompt_tokens"]
    assert Decimal(floats.headers["x-llmaas-cost-eur"]) == Decimal("0.9") * tokens / 1_000_000
    assert Decimal(floats.headers["x-llmaas-energy-kwh"]) == Decimal("0.00298") * tokens / 1_000_000


def test_dimensions_is_rejected(mesh):
    r = _post(mesh, {"model": MODEL, "input": A, "dimensions": 128})
    assert r.status_code == 400 and r.json()["error"]["param"] == "dimensions"


# -- trust (issue #14 points 4 and 10) ---------------------------------------------------


def test_edge_metrics_show_no_tenant_without_a_credential(mesh, client):
    client.embeddings.create(model=MODEL, input="count me")  # a tenant's request to show
    anonymous = httpx.get(f"{mesh.url}/metrics", timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert "tenant=" not in anonymous.text
    auth = {"Authorization": f"Bearer {mesh.admin_key}"}
    scraped = httpx.get(f"{mesh.url}/metrics", timeout=10, headers=auth)
    assert scraped.status_code == 200 and "tenant=" in scraped.text


def test_a_rogue_worker_cannot_announce_itself(mesh):
    """Plain mode: Registry needs the launcher's mesh token; without it, UNAUTHENTICATED."""
    assert mesh.mesh_token  # the launcher makes one and gives it to every child
    rogue = admin_pb2.WorkerAnnouncement(worker_id="rogue", address="127.0.0.1:9")
    with grpc.insecure_channel(mesh.router_address) as channel:
        registry = admin_pb2_grpc.RegistryStub(channel)
        for md in ((), (("x-llmaas-mesh-token", "guessed"),)):
            with pytest.raises(grpc.RpcError) as err:
                registry.Announce(rogue, metadata=md, timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # With the token the call is served (an unknown address: nothing to withdraw).
        md = (("x-llmaas-mesh-token", mesh.mesh_token),)
        assert not registry.Withdraw(rogue, metadata=md, timeout=10).accepted
    body = httpx.get(f"{mesh.url}/health", timeout=5).json()
    assert body["models"][MODEL] == "SERVING"  # the real worker is still in rotation
