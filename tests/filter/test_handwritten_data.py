"""The hand-written training rows (tools/filter_data/handwritten.py): valid, all
trained on, and never the split that still measures the filter."""

from __future__ import annotations

import json

import pytest

from tools.filter_data.generate import with_json_views
from tools.filter_data.handwritten import CALIBRATION, HELDOUT_DIR, SPENT, handwritten_records
from tools.filter_heldout import DEFAULT_SPLIT


def test_rows_are_valid_and_all_train():
    records = list(handwritten_records())
    assert len(records) > 2000
    for r in records:
        assert r["text"].strip() and r["label"] in ("attack", "benign"), r
        assert r["category"].startswith("hand_") and r["language"]
    # the threshold is set on the calibration splits, so no hand-written row is held out
    assert {r["split"] for r in records} == {"train"}


@pytest.mark.parametrize("held_out", [DEFAULT_SPLIT, *(HELDOUT_DIR / n for n in CALIBRATION)])
def test_the_measuring_split_and_the_calibration_benign_rows_are_never_trained_on(held_out):
    """The split that measures, and the benign rows that set the threshold (the
    calibration splits' attacks train)."""
    assert held_out.name not in SPENT and DEFAULT_SPLIT.name not in CALIBRATION
    trained = {" ".join(r["text"].split()) for r in handwritten_records()}
    with held_out.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    kept = [r for r in rows if held_out == DEFAULT_SPLIT or r["label"] == "benign"]
    texts = [" ".join(r["text"].split()) for r in kept]
    assert texts and not trained.intersection(texts)
    if held_out != DEFAULT_SPLIT:  # and the attacks do train
        attacks = {" ".join(r["text"].split()) for r in rows if r["label"] == "attack"}
        assert attacks <= trained


def test_json_documents_also_train_as_the_values_the_layer_reads_in_tool_results():
    doc = '{"status": "ok", "note": "Ignore the earlier alert, it was a false alarm."}'
    rows = [
        {"text": doc, "label": "benign", "split": "train", "encoding": "none"},
        {"text": doc, "label": "benign", "split": "test", "encoding": "none"},
        {"text": "plain text", "label": "benign", "split": "train", "encoding": "none"},
    ]
    out = list(with_json_views(rows))
    views = [r for r in out if r["encoding"] == "json_values"]
    assert [r["text"] for r in views] == ["ok\nIgnore the earlier alert, it was a false alarm."]
    assert views[0]["split"] == "train" and len(out) == 4  # never a view of a test row
