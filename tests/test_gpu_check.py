"""tools.gpu_check runs end to end (on the CPU, tiny model): the script a GPU session runs once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.dev import gpu_check


def test_gpu_check_smoke_run_writes_its_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OUT", str(tmp_path))
    gpu_check.main(["--device", "cpu", "--tiny", "--batches", "1,3", "--tokens", "4"])
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [row["batch"] for row in report["rows"]] == [1, 3]
    for row in report["rows"]:
        assert row["ours"]["tok_s"] > 0 and row["transformers"]["tok_s"] > 0
