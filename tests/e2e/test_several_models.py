"""End to end: one launcher serves the default model plus two operator models (LLMAAS_MODELS).

Real filter, workers, router and edge. The two extra models are tiny random-weight Llama
checkpoints built here (tools/dev/make_tiny_model), served under names the catalog does not
know; each request must land on the worker of the model it names (the workers' own request
counters say so), and GET /v1/models must list all three, the extra ones owned by the operator.
"""

from __future__ import annotations

import asyncio
import os

import grpc
import httpx
import pytest

from mesh.pb import worker_pb2, worker_pb2_grpc
from tools.dev.make_tiny_model import make_tiny_model
from tools.run_mesh import DEFAULT_MODEL, MeshHandle, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

OPERATOR = "acme-ops"
EXTRA = ("tiny-a", "org/tiny-b:1m")
MESSAGES = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> MeshHandle:
    root = tmp_path_factory.mktemp("several")
    dirs = [make_tiny_model(root / f"tiny-{i}", seed=i) for i in (1, 2)]
    env = {
        **os.environ,
        "LLMAAS_TLS": "0",  # the worker counters below are read in clear
        "LLMAAS_MODELS": ",".join(f"{n}={d}" for n, d in zip(EXTRA, dirs, strict=True)),
        "LLMAAS_OPERATOR": OPERATOR,
    }
    handle = start_mesh(env, workers=1, embeddings=False, run_dir=root / "run", ready_timeout_s=360)
    yield handle
    handle.stop()


def requests_served(address: str) -> int:
    async def load() -> int:
        async with grpc.aio.insecure_channel(address) as channel:
            report = await worker_pb2_grpc.WorkerStub(channel).GetLoad(
                worker_pb2.LoadRequest(), timeout=10
            )
            return report.num_requests_total

    return asyncio.run(load())


def workers(mesh: MeshHandle) -> dict[str, str]:
    """model id -> its worker's address."""
    out = {DEFAULT_MODEL: mesh.worker_addresses[0]}
    out.update({m.name: f"127.0.0.1:{m.port}" for m in mesh.extra_models})
    return out


def chat(mesh: MeshHandle, model: str) -> dict:
    reply = httpx.post(
        f"{mesh.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {mesh.api_key}"},
        json={"model": model, "messages": MESSAGES, "max_tokens": 8, "temperature": 0},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_models_lists_all_three(mesh: MeshHandle) -> None:
    reply = httpx.get(
        f"{mesh.url}/v1/models", headers={"Authorization": f"Bearer {mesh.api_key}"}, timeout=30
    )
    assert reply.status_code == 200
    by_id = {m["id"]: m for m in reply.json()["data"]}
    assert {DEFAULT_MODEL, *EXTRA} <= set(by_id)
    assert [by_id[name]["owned_by"] for name in EXTRA] == [OPERATOR, OPERATOR]
    assert by_id[DEFAULT_MODEL]["owned_by"] != OPERATOR  # the catalog's editor


def test_each_request_lands_on_its_models_worker(mesh: MeshHandle) -> None:
    addresses = workers(mesh)
    assert len(set(addresses.values())) == 3
    texts = {}
    for model in (*EXTRA, DEFAULT_MODEL, EXTRA[0]):
        before = {m: requests_served(a) for m, a in addresses.items()}
        answer = chat(mesh, model)
        after = {m: requests_served(a) for m, a in addresses.items()}
        assert answer["model"] == model
        assert {m: after[m] - before[m] for m in addresses} == {
            m: int(m == model) for m in addresses
        }
        texts[model] = answer["choices"][0]["message"]["content"]
    assert texts[EXTRA[0]] != texts[EXTRA[1]]  # two different sets of weights


def test_an_unknown_model_is_404(mesh: MeshHandle) -> None:
    reply = httpx.post(
        f"{mesh.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {mesh.api_key}"},
        json={"model": "tiny-c", "messages": MESSAGES},
        timeout=30,
    )
    assert reply.status_code == 404 and reply.json()["error"]["param"] == "model"
