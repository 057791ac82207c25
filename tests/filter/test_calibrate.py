"""The threshold rule of tools/calibrate_filter.py (rows are given), and its recorder of the layer."""

from __future__ import annotations

from tools.calibrate_filter import STEP, Benign, lowest_threshold


def _rows(group: str, scores: list[float], by_rules: int = 0) -> list[Benign]:
    return [Benign(group, i < by_rules, p) for i, p in enumerate(scores)]


def test_the_threshold_lets_through_no_more_false_positives_than_the_bound():
    scores = [0.99, 0.9, 0.8, 0.7] + [0.1] * 96  # 100 benign rows
    assert lowest_threshold(_rows("split", scores), {"split": 0.0}) == round(0.99 + STEP, 4)
    assert lowest_threshold(_rows("split", scores), {"split": 0.02}) == round(0.8 + STEP, 4)


def test_rows_the_rules_block_use_up_the_bound_first():
    scores = [0.2, 0.99, 0.9, 0.8] + [0.1] * 96
    # one prompt blocked by the rules: one of the two allowed is gone
    assert lowest_threshold(_rows("split", scores, by_rules=1), {"split": 0.02}) == round(
        0.9 + STEP, 4
    )


def test_the_strictest_group_decides_and_the_floor_holds():
    rows = _rows("split", [0.6] + [0.1] * 99) + _rows("corpus", [0.95] + [0.1] * 49)
    assert lowest_threshold(rows, {"split": 0.01, "corpus": 0.0}) == round(0.95 + STEP, 4)
    assert lowest_threshold(_rows("split", [0.1] * 10), {"split": 0.0}) == 0.5


def test_a_group_the_rules_already_push_past_its_bound_turns_the_layer_off():
    rows = _rows("corpus", [0.1] * 10, by_rules=2)
    assert lowest_threshold(rows, {"corpus": 0.1}) > 1.0


def test_the_recorder_notes_every_scoring_call_including_the_rejoins():
    """The recorder stands in for ``Model.score_cps``: it must take what the layer passes
    (the rejoin's window filter too), or calibrating a retrain crashes."""
    import numpy as np

    from mesh.filter import learned
    from tools.calibrate_filter import _Recorder

    folded = "please summarise the attached meeting notes for the team"
    with _Recorder() as recorder:
        learned.judge(folded)
        plain = recorder.best
        learned.judge(folded, keep=lambda cps, starts: np.ones(len(starts), dtype=bool))
    assert 0.0 < plain == recorder.best
