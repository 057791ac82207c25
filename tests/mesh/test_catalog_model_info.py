"""mesh.catalog.model_info: the one catalog entry -> ModelInfo rule, for router and workers."""

from __future__ import annotations

from datetime import date

from mesh.catalog import Catalog, evaluate
from mesh.catalog.entries import parse_text
from mesh.catalog.model_info import model_info
from mesh.pb import common_pb2
from worker import embedding_service
from worker.embedding_service import EmbeddingServed

CSV = """id,editor,phase,dmp,dsp,context_length,energy_kwh_per_mtok,price_input,price_output,price_reasoning,weights,kind,successor
old:1b,Acme,production,2025-01-15,2026-06-30,4096,0.5,,,,,chat,new:2b
"""
ENTRY = parse_text(CSV)["old:1b"]
WORKER = common_pb2.ModelInfo(id="old:1b", context_length=2048, served=True, kind="chat")


def test_active_model_takes_the_workers_window_and_catalog_facts() -> None:
    info = model_info(ENTRY, evaluate(ENTRY, date(2025, 6, 1)), WORKER)
    assert (info.id, info.owned_by, info.phase, info.kind) == (
        "old:1b",
        "Acme",
        "production",
        "chat",
    )
    assert (info.dmp, info.dsp, info.successor) == ("2025-01-15", "2026-06-30", "new:2b")
    assert info.created == 1736899200  # 2025-01-15T00:00:00Z
    assert info.context_length == 2048 and info.served
    assert info.energy_kwh_per_mtok == 0.5
    assert info.deprecation_date == "2026-03-30"  # the notice start, known ahead from the DSP


def test_model_in_notice_is_listed_deprecated_with_its_notice_start() -> None:
    info = model_info(ENTRY, evaluate(ENTRY, date(2026, 5, 1)), WORKER)
    assert (info.phase, info.deprecation_date, info.served) == ("deprecated", "2026-03-30", True)


def test_retired_or_unserved_model_is_not_served() -> None:
    assert not model_info(ENTRY, evaluate(ENTRY, date(2026, 7, 1)), WORKER).served
    unserved = model_info(ENTRY, evaluate(ENTRY, date(2025, 6, 1)))
    assert not unserved.served and unserved.context_length == 4096  # the catalog's window


def test_embedding_worker_info_uses_the_same_rule() -> None:
    """The embedding worker used to copy only editor/phase/DMP/energy: DSP and successor were
    lost. Its Info is now the router's rule applied to what the worker serves."""
    served = EmbeddingServed(
        model_id="granite-embedding:278m",
        context_length=512,
        worker_id="w1",
        max_num_seqs=8,
        device="cpu",
    )
    info = embedding_service.model_info(served)
    catalog = Catalog.load()
    entry = catalog.get("granite-embedding:278m")
    assert entry is not None and entry.dsp is not None and entry.successor
    assert (info.dsp, info.successor) == (entry.dsp.isoformat(), entry.successor)
    worker = common_pb2.ModelInfo(
        id=served.model_id, context_length=512, served=True, kind="embedding", phase="production"
    )
    assert info == model_info(entry, catalog.lifecycle(entry.id), worker)


def test_embedding_worker_info_without_a_catalog_entry() -> None:
    served = EmbeddingServed(
        model_id="custom-embed", context_length=128, worker_id="w1", max_num_seqs=8, device="cpu"
    )
    info = embedding_service.model_info(served)
    assert (info.id, info.kind, info.phase, info.served) == (
        "custom-embed",
        "embedding",
        "production",
        True,
    )
    assert info.owned_by == "" and info.context_length == 128
