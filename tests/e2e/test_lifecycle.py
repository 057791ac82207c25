"""End to end: model lifecycle from an operator's catalog file (real processes, SmolLM2).

The catalog is a copy of mesh/catalog/models.csv plus test rows whose `weights` column maps
them to the smollm2:135m weights the worker loaded: a retired model (410 naming its
successor), one in its notice window (200 with Deprecation / Sunset / Link), an experimental
one (403 until the tenant opts in). Catalog models without weights are 503. The router
re-reads the file without restart (LLMAAS_CATALOG_RELOAD_S=1 here).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from mesh.catalog import DEFAULT_PATH
from mesh.catalog.lifecycle import notice_start
from tools.run_mesh import MeshHandle, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ADMIN_KEY = "sk-llmaas-admin-lifecycle-test-0123456789"
TODAY = datetime.now(UTC).date()
SOON = TODAY + timedelta(days=30)  # inside the 3-month notice window
EDITOR = "Lifecycle Test Lab"
ROWS = f"""old:135m,{EDITOR},production,2024-01-01,{TODAY - timedelta(days=1)},8192,0.0192,,,,smollm2:135m,chat,smollm2:135m
notice:135m,{EDITOR},production,2025-01-01,{SOON},8192,0.0192,,,,smollm2:135m,chat,smollm2:135m
beta:135m,{EDITOR},experimental,2025-06-01,,8192,0.0192,,,,smollm2:135m,chat,
"""
LATE_ROW = f"late:135m,{EDITOR},production,2025-07-01,,8192,0.0192,,,,smollm2:135m,chat,\n"
QUESTION = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("catalog") / "models.csv"
    path.write_text(DEFAULT_PATH.read_text().rstrip("\n") + "\n" + ROWS)
    return path


@pytest.fixture(scope="module")
def mesh(tmp_path_factory, catalog) -> MeshHandle:
    env = {
        **os.environ,
        "LLMAAS_CATALOG": str(catalog),
        "LLMAAS_CATALOG_RELOAD_S": "1",
        "LLMAAS_ADMIN_KEY": ADMIN_KEY,
    }
    handle = start_mesh(
        env,
        workers=1,
        embeddings=False,
        run_dir=tmp_path_factory.mktemp("mesh"),
        ready_timeout_s=240,
    )
    yield handle
    handle.stop()


def chat(mesh: MeshHandle, model: str, max_tokens: int = 2) -> httpx.Response:
    return httpx.post(
        f"{mesh.url}/v1/chat/completions",
        timeout=60,
        headers={"Authorization": f"Bearer {mesh.api_key}"},
        json={"model": model, "messages": QUESTION, "max_tokens": max_tokens, "temperature": 0},
    )


def models(mesh: MeshHandle) -> dict[str, dict]:
    r = httpx.get(
        f"{mesh.url}/v1/models", headers={"Authorization": f"Bearer {mesh.api_key}"}, timeout=10
    )
    assert r.status_code == 200
    return {m["id"]: m for m in r.json()["data"]}


def test_retired_model_is_410_naming_its_successor(mesh):
    r = chat(mesh, "old:135m")
    error = r.json()["error"]
    assert r.status_code == 410 and error["code"] == "model_retired"
    assert "smollm2:135m" in error["message"] and str(TODAY - timedelta(days=1)) in error["message"]


def test_model_in_notice_answers_with_deprecation_sunset_and_link(mesh):
    r = chat(mesh, "notice:135m")
    assert r.status_code == 200 and r.json()["model"] == "notice:135m"
    start = notice_start(SOON)
    assert (
        r.headers["deprecation"]
        == f"@{int(datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp())}"
    )
    assert parsedate_to_datetime(r.headers["sunset"]).date() == SOON
    assert r.headers["link"] == '</v1/models/smollm2:135m>; rel="successor-version"'


def test_every_answer_carries_cost_and_energy(mesh):
    r = chat(mesh, "smollm2:135m")
    usage = r.json()["usage"]
    assert r.status_code == 200 and "deprecation" not in r.headers
    cost = (usage["prompt_tokens"] * Decimal("0.9") + usage["completion_tokens"] * 4) / 1_000_000
    assert Decimal(r.headers["x-llmaas-cost-eur"]) == cost
    assert (
        Decimal(r.headers["x-llmaas-energy-kwh"])
        == usage["total_tokens"] * Decimal("0.0192") / 1_000_000
    )


def test_catalog_model_without_a_serving_worker_is_503(mesh):
    r = chat(mesh, "gemma3:1b")
    assert r.status_code == 503 and r.json()["error"]["code"] == "model_unavailable"
    assert chat(mesh, "no-such-model:1b").status_code == 404


def test_models_list_shows_editor_phase_dates_and_what_is_served(mesh):
    listed = models(mesh)
    smol, gemma, notice = listed["smollm2:135m"], listed["gemma3:1b"], listed["notice:135m"]
    assert (
        smol["owned_by"] == "Hugging Face"
        and smol["served"] is True
        and smol["phase"] == "production"
    )
    assert gemma["owned_by"] == "Google" and gemma["served"] is False
    assert (gemma["dmp"], gemma["dsp"]) == ("2025-06-13", "2026-12-31")
    assert (
        notice["owned_by"] == EDITOR
        and notice["served"] is True
        and notice["phase"] == "deprecated"
    )
    assert notice["dsp"] == str(SOON) and notice["successor"] == "smollm2:135m"
    assert "old:135m" not in listed  # retired
    assert "beta:135m" not in listed  # experimental: only for tenants that opted in


def test_experimental_model_needs_the_tenant_opt_in(mesh):
    r = chat(mesh, "beta:135m")
    assert r.status_code == 403 and r.json()["error"]["code"] == "model_not_allowed"
    admin = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.admin",
            "--addr",
            mesh.router_address,
            "--key",
            ADMIN_KEY,
            "tenant",
            "set",
            "dev",
            "--experimental",
            "on",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert admin.returncode == 0, admin.stderr
    r = chat(mesh, "beta:135m")
    assert r.status_code == 200 and r.json()["model"] == "beta:135m"
    beta = models(mesh)["beta:135m"]
    assert beta["phase"] == "experimental" and beta["served"] is True


def test_catalog_edits_apply_without_restart(mesh, catalog):
    assert chat(mesh, "late:135m").status_code == 404
    text = catalog.read_text().replace(
        f"notice:135m,{EDITOR},production", f"notice:135m,{EDITOR},retired"
    )
    catalog.write_text(text + LATE_ROW)
    deadline = time.monotonic() + 10  # reload interval 1 s
    while chat(mesh, "late:135m", 1).status_code != 200:
        assert time.monotonic() < deadline, "the catalog edit was not picked up"
        time.sleep(0.5)
    r = chat(mesh, "notice:135m")
    assert r.status_code == 410 and "smollm2:135m" in r.json()["error"]["message"]
    assert models(mesh)["late:135m"]["owned_by"] == EDITOR
