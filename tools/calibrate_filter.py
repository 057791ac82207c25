"""Choose the learned layer's block threshold on fresh hand-written prompts it never saw.

    python -m tools.calibrate_filter [--weights PATH] [--split PATH ...] [--dry-run]

The dev rule of ``tools.train_filter`` bounds false positives on dev rows drawn from
the training sources; on fresh hand-written splits the layer's false-positive rate came
out ten times lower than dev said (0.1 % against 1 %), so it left most of its recall
unused. This tool sets the threshold where the **whole filter** (rules, decoding and
the layer) keeps its false positives within bounds on:
- the benign rows of the calibration splits (``tools.filter_data.handwritten.CALIBRATION``):
  spent fresh splits whose benign rows training never reads: <= ``--max-fpr`` overall
  and <= ``--max-lang-fpr`` in every language;
- the repo corpus ``tests/filter/corpus``: <= the project's bar (``filter_eval.MAX_FPR``),
  and none of its benign tool traffic (an agent that cannot read a tool's output stops).
The lowest threshold meeting every bound is written into the weights file; the split
that measures (``tools.filter_heldout.DEFAULT_SPLIT``) is never read here.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesh.filter import PromptFilter, learned  # noqa: E402
from mesh.filter.learned_semantic import SEMANTIC_PATH, TOKENIZER_PATH  # noqa: E402
from tools.filter_data.handwritten import CALIBRATION, HELDOUT_DIR  # noqa: E402
from tools.filter_eval import DEFAULT_CORPUS, MAX_FPR, evaluate_record, load_corpus  # noqa: E402
from tools.filter_heldout import full_check, load_jsonl  # noqa: E402

# Bounds on the calibration split: the frozen bar, 1 % overall and 3 % a language. Until
# the fourteenth session the overall bound was 0.75 %, a margin for a new split's sampling
# noise; on the two fresh splits those weights never saw, it saved 0.0 and 0.1 points of
# false positives and cost 5.5 and 5.2 points of recall.
MAX_SPLIT_FPR = 0.01
MAX_LANG_FPR = 0.03
FLOOR = 0.5  # never below even odds
STEP = 1e-4  # a threshold sits just above the benign score it lets through


@dataclass(frozen=True)
class Benign:
    """A benign prompt (or conversation) as the threshold sees it: blocked without the
    layer, and the layer's highest probability over every text it judged."""

    group: str
    by_rules: bool
    p: float


def lowest_threshold(
    rows: Iterable[Benign], bounds: dict[str, float], floor: float = FLOOR
) -> float:
    """The lowest threshold at which each group's false-positive rate stays within its
    bound; a group the rules alone already push past its bound cannot be helped by the
    layer, which then blocks nothing (threshold above 1)."""
    groups: dict[str, list[Benign]] = defaultdict(list)
    for row in rows:
        groups[row.group].append(row)
    t = floor
    for group, members in groups.items():
        allowed = math.floor(bounds[group] * len(members) + 1e-9)
        allowed -= sum(m.by_rules for m in members)
        if allowed < 0:
            return 1.0 + STEP
        scores = sorted((m.p for m in members if not m.by_rules), reverse=True)
        if allowed < len(scores):
            t = max(t, scores[allowed] + STEP)
    return round(t, 4)


class _Recorder:
    """Runs the filter with the layer silenced, noting its highest probability."""

    def __init__(self) -> None:
        self.best = 0.0
        self._score = learned.Model.score_cps

    def __enter__(self) -> _Recorder:
        recorder, score = self, self._score

        def noted(
            model: learned.Model, cps: np.ndarray, keep: learned.Keep | None = None
        ) -> tuple[float, int, str]:
            found = score(model, cps, keep)
            recorder.best = max(recorder.best, found[0])
            return found

        learned.Model.score_cps = noted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        learned.Model.score_cps = self._score  # type: ignore[method-assign]


def benign_rows(weights: Path, splits: Iterable[Path]) -> list[Benign]:
    """The calibration splits' and the corpus's benign rows, judged with the layer
    silenced (a copy of the weights whose threshold no probability reaches)."""
    rows: list[Benign] = []
    with tempfile.TemporaryDirectory() as tmp:
        silent = Path(tmp) / weights.name
        for beside in (
            weights,
            weights.parent / SEMANTIC_PATH.name,
            weights.parent / TOKENIZER_PATH.name,
        ):
            if beside.exists():  # a semantic half comes along (learned.use_weights)
                shutil.copyfile(beside, Path(tmp) / beside.name)
        write_threshold(silent, 2.0)
        learned.use_weights(silent)
        try:
            with _Recorder() as rec:
                for r in (r for split in splits for r in load_jsonl(split)):
                    if r["label"] == "benign":
                        rec.best = 0.0
                        by_rules = not full_check(PromptFilter(), r["text"]).allowed
                        for group in ("split", f"split:{r['language']}"):
                            rows.append(Benign(group, by_rules, rec.best))
                for r in load_corpus(DEFAULT_CORPUS):
                    if r["label"] == "benign":
                        rec.best = 0.0
                        by_rules = evaluate_record(r).blocked
                        rows.append(Benign("corpus", by_rules, rec.best))
                        if r.get("tool_results"):
                            rows.append(Benign("corpus tool traffic", by_rules, rec.best))
        finally:
            learned.use_weights(weights)
    return rows


def bounds_for(rows: list[Benign], max_fpr: float, max_lang_fpr: float) -> dict[str, float]:
    # agents' tool traffic in the corpus: not one benign tool result blocked
    bounds = {"split": max_fpr, "corpus": MAX_FPR, "corpus tool traffic": 0.0}
    bounds.update({r.group: max_lang_fpr for r in rows if r.group.startswith("split:")})
    return bounds


def write_threshold(path: Path, threshold: float) -> None:
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["threshold"] = np.float64(threshold)
    np.savez_compressed(path, **arrays)


def calibrate(path: Path, splits: list[Path], max_fpr: float, max_lang_fpr: float) -> float:
    rows = benign_rows(path, splits)
    t = lowest_threshold(rows, bounds_for(rows, max_fpr, max_lang_fpr))
    blocked = defaultdict(int)
    for r in rows:
        blocked[r.group] += r.by_rules or r.p >= t
    with np.load(path) as z:
        before = float(z["threshold"])
    split_rows = sum(1 for r in rows if r.group == "split")
    print(f"threshold {t} (was {before}); benign blocked at it: calibration splits "
          f"{blocked['split']} of {split_rows}, corpus {blocked['corpus']}")  # fmt: skip
    return t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, default=learned.WEIGHTS_PATH)
    p.add_argument(
        "--split", type=Path, nargs="+", default=[HELDOUT_DIR / name for name in CALIBRATION]
    )
    p.add_argument("--max-fpr", type=float, default=MAX_SPLIT_FPR, help="whole split, whole filter")
    p.add_argument("--max-lang-fpr", type=float, default=MAX_LANG_FPR, help="each language")
    p.add_argument("--dry-run", action="store_true", help="print, do not write")
    args = p.parse_args(argv)
    t = calibrate(args.weights, args.split, args.max_fpr, args.max_lang_fpr)
    if not args.dry_run:
        write_threshold(args.weights, t)
        print(f"wrote threshold {t} into {args.weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
