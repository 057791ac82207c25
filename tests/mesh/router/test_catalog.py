"""Catalog data and lifecycle rules, checked against the operator's published table."""

from __future__ import annotations

import csv
import os
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from mesh.catalog import DEFAULT_PATH, Catalog, CatalogError
from mesh.catalog.lifecycle import months_before, retired_message
from tools.ops.lifecycle_report import attach_usage, select, usage_via_sql

TODAY = date(2026, 11, 26)
SHARED_CSV = Path("/work/shared/catalog.csv")


def _published_rows() -> list[dict[str, str]]:
    """The source of truth: the shared table when present, else the repo file itself."""
    path = SHARED_CSV if SHARED_CSV.exists() else DEFAULT_PATH
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    return [r for r in rows if r["dsp"]][:47] if path == DEFAULT_PATH else rows


def _expected_state(dsp: date, today: date) -> str:
    # Independent of the implementation: step back month by month, clamping the day.
    y, m = dsp.year, dsp.month - 3
    if m < 1:
        y, m = y - 1, m + 12
    day = dsp.day
    while True:
        try:
            start = date(y, m, day)
            break
        except ValueError:
            day -= 1
    if today > dsp:
        return "retired"
    return "notice" if today >= start else "active"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_all_published_models_present_and_default_models(catalog: Catalog) -> None:
    rows = _published_rows()
    assert len(rows) == 47
    for row in rows:
        entry = catalog.get(row["id"])
        assert entry is not None, row["id"]
        assert (entry.editor, entry.phase) == (row["editor"], row["phase"])
        assert entry.dmp == date.fromisoformat(row["dmp"])
        assert entry.dsp == date.fromisoformat(row["dsp"])
    assert len(catalog.entries()) == 49
    chat, emb = catalog.get("smollm2:135m"), catalog.get("all-minilm:22m")
    assert (chat.kind, chat.weights, chat.context_length, chat.phase) == (
        "chat",
        "smollm2:135m",
        8192,
        "production",
    )
    assert (emb.kind, emb.weights, emb.context_length) == ("embedding", "all-minilm:22m", 256)


@pytest.mark.parametrize("row", _published_rows(), ids=lambda r: r["id"])
def test_each_model_classified_on_2026_11_26(catalog: Catalog, row: dict[str, str]) -> None:
    expected = _expected_state(date.fromisoformat(row["dsp"]), TODAY)
    assert catalog.lifecycle(row["id"], TODAY).state == expected


def test_known_classification_counts(catalog: Catalog) -> None:
    states = [catalog.lifecycle(r["id"], TODAY).state for r in _published_rows()]
    # 2025-* and 2026-03/06 DSPs are past; every 2026-12-31 model is in notice since 09-30.
    assert states.count("retired") == 20
    assert states.count("notice") == 27
    assert catalog.lifecycle("smollm2:135m", TODAY).state == "active"


def test_boundaries(catalog: Catalog) -> None:
    dsp = date(2026, 12, 31)
    assert catalog.lifecycle("gemma3:1b", dsp).state == "notice"
    assert catalog.lifecycle("gemma3:1b", dsp + timedelta(days=1)).state == "retired"
    assert catalog.lifecycle("gemma3:1b", date(2026, 9, 30)).state == "notice"
    assert catalog.lifecycle("gemma3:1b", date(2026, 9, 29)).state == "active"
    assert catalog.lifecycle("gemma3:1b", TODAY).notice_start == date(2026, 9, 30)


def test_month_clamping() -> None:
    assert months_before(date(2026, 5, 31), 3) == date(2026, 2, 28)
    assert months_before(date(2028, 5, 31), 3) == date(2028, 2, 29)
    assert months_before(date(2026, 2, 15), 3) == date(2025, 11, 15)
    assert months_before(date(2026, 3, 30), 3) == date(2025, 12, 30)


def test_headers_format(catalog: Catalog) -> None:
    lc = catalog.lifecycle("granite-embedding:278m", TODAY)
    assert lc.state == "notice" and lc.successor == "all-minilm:22m"
    start = datetime(2026, 9, 30, tzinfo=UTC)
    assert lc.headers["Deprecation"] == f"@{int(start.timestamp())}"
    assert lc.headers["Sunset"] == "Thu, 31 Dec 2026 00:00:00 GMT"
    assert parsedate_to_datetime(lc.headers["Sunset"]).date() == date(2026, 12, 31)
    assert lc.headers["Link"] == '</v1/models/all-minilm:22m>; rel="successor-version"'
    assert "Link" not in catalog.lifecycle("gemma3:1b", TODAY).headers
    assert catalog.lifecycle("smollm2:135m", TODAY).headers == {}


def test_retired_message_names_successor(catalog: Catalog) -> None:
    entry = catalog.get("qwen2.5:14b")
    lc = catalog.lifecycle(entry.id, TODAY)
    assert lc.state == "retired" and lc.headers == {}
    msg = retired_message(entry)
    assert "qwen2.5:14b" in msg and "2025-12-31" in msg and "qwen3:14b" in msg


def test_successors_exist_and_outlive(catalog: Catalog) -> None:
    for e in catalog.entries():
        if e.successor:
            succ = catalog.get(e.successor)
            assert succ is not None and succ.kind == e.kind, e.id
            assert succ.dsp is None or (e.dsp is not None and succ.dsp > e.dsp), e.id


def test_energy_anchors_exact(catalog: Catalog) -> None:
    assert catalog.get("gemma3:1b").energy_kwh_per_mtok == Decimal("0.15")
    assert catalog.get("llama3.3:70b").energy_kwh_per_mtok == Decimal("11.75")
    moe, dense = catalog.get("qwen3:30b-a3b"), catalog.get("qwen3:32b")
    assert moe.energy_kwh_per_mtok < dense.energy_kwh_per_mtok
    assert moe.params_b == 30.0
    assert all(e.energy_kwh_per_mtok > 0 for e in catalog.entries())


def test_phase_rules(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(
        "id,editor,phase,dmp,dsp,kind,successor\n"
        "a:1b,X,deprecated,2025-01-01,,chat,b:1b\n"
        "b:1b,X,retired,2025-01-01,2030-01-01,chat,\n"
        "c:1b,X,experimental,2025-01-01,,chat,\n"
    )
    cat = Catalog.load(path)
    dep = cat.lifecycle("a:1b", TODAY)
    assert dep.state == "notice" and dep.notice_start is None
    assert dep.headers == {"Link": '</v1/models/b:1b>; rel="successor-version"'}
    assert cat.lifecycle("b:1b", TODAY).state == "retired"
    assert cat.lifecycle("c:1b", TODAY).state == "active"


def test_reload_on_change_and_bad_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("id,editor,phase,dmp,dsp\na:1b,X,production,2025-01-01,\n")
    cat = Catalog.load(path)
    assert not cat.reload_if_changed()
    path.write_text(
        "id,editor,phase,dmp,dsp\na:1b,X,production,2025-01-01,\n"
        "b:2b,Y,production,2025-01-01,2026-12-31\n"
    )
    _bump_mtime(path)
    assert cat.reload_if_changed()
    assert cat.get("b:2b") is not None
    path.write_text("id,editor,phase,dmp,dsp\nc:1b,X,bogus,2025-01-01,\n")
    _bump_mtime(path)
    assert not cat.reload_if_changed()
    assert cat.get("b:2b") is not None  # the broken edit did not take models down
    with pytest.raises(CatalogError, match="phase"):
        Catalog.load(path)


def _bump_mtime(path: Path) -> None:
    # Filesystems with coarse mtimes: move it forward explicitly.
    t = time.time() + 5
    os.utime(path, (t, t))


def test_lifecycle_report_buckets_and_usage(tmp_path: Path) -> None:
    rows = {r.model: r for r in select(Catalog.load(), TODAY, 3)}
    assert rows["gemma3:1b"].state == "notice" and rows["gemma3:1b"].days_left == 35
    assert "mistral-small3.2:24b" not in rows  # DSP 2026-03-30: retired 8 months ago
    assert rows["gemma3:1b"].successor == ""
    assert "qwen2.5:14b" not in rows  # retired more than a quarter ago
    assert "smollm2:135m" not in rows
    db = tmp_path / "u.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE usage (tenant TEXT, model TEXT, day TEXT, requests INT)")
        conn.executemany(
            "INSERT INTO usage VALUES (?, ?, ?, ?)",
            [
                ("acme", "gemma3:1b", "2026-11-20", 5),
                ("acme", "gemma3:1b", "2026-11-25", 2),
                ("beta", "gemma3:1b", "2026-10-01", 9),
            ],
        )
    report = list(rows.values())
    attach_usage(report, usage_via_sql(db, "2026-10-27"))
    acme = [u for r in report if r.model == "gemma3:1b" for u in r.usage]
    assert [(u.tenant, u.requests, u.last_day) for u in acme] == [("acme", 7, "2026-11-25")]
