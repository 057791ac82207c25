"""A catalog id is served by the weights its `weights` column names, and by nothing else."""

from __future__ import annotations

import grpc
import pytest
import router_fakes
from router_fakes import FakeWorker, chat

from mesh.errors import from_rpc_error
from mesh.pb import inference_pb2

pytestmark = pytest.mark.timeout(30)

CATALOG = """id,editor,phase,dmp,dsp,context_length,energy_kwh_per_mtok,weights,kind,successor
base:1m,Acme,production,2025-01-01,,2048,0.5,base:1m,chat,
alias:1m,Beta,production,2025-01-01,2030-01-01,2048,2,base:1m,chat,
bypath:1m,Beta,production,2025-01-01,,2048,2,/srv/models/tiny-dir,chat,
nomap:1m,Gamma,production,2025-01-01,,2048,2,,chat,
"""


@pytest.fixture
async def mesh(make_mesh, monkeypatch):
    monkeypatch.setattr(router_fakes, "CATALOG", CATALOG)
    return await make_mesh([FakeWorker("w", ("base:1m", "tiny-dir"))])


async def test_alias_is_served_by_the_mapped_weights_under_its_own_name(mesh):
    chunks = [c async for c in mesh.stub.ChatCompletion(chat("alias:1m"), metadata=mesh.md())]
    assert {c.model for c in chunks} == {"alias:1m"}
    assert mesh.workers[0].calls[-1].model == "base:1m"  # what the worker loaded
    # Energy is the alias's catalog figure (2 kWh/Mtok), not the base model's.
    assert chunks[-1].cost.energy_kwh == "0.000026"  # 13 tokens


async def test_path_weights_match_the_worker_announcing_the_directory_name(mesh):
    chunks = [c async for c in mesh.stub.ChatCompletion(chat("bypath:1m"), metadata=mesh.md())]
    assert chunks[-1].finish_reason and mesh.workers[0].calls[-1].model == "tiny-dir"


async def test_catalog_model_without_weights_is_503_and_never_reaches_a_worker(mesh):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        [c async for c in mesh.stub.ChatCompletion(chat("nomap:1m"), metadata=mesh.md())]
    err = from_rpc_error(info.value)
    assert (err.http_status, err.code) == (503, "model_unavailable")
    assert mesh.workers[0].calls == []


async def test_models_list_marks_mapped_ids_served(mesh):
    reply = await mesh.stub.ListModels(inference_pb2.ListModelsRequest(), metadata=mesh.md())
    served = {m.id: m.served for m in reply.models}
    assert served["alias:1m"] and served["bypath:1m"] and served["base:1m"]
    assert served["nomap:1m"] is False
