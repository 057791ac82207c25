"""Hand-written prompts for training (all of them train).

- ``tools/filter_data/handwritten/*.jsonl``: attacks and hard negatives written by hand
  for training, in 14 languages, in the shapes public collections lack (injections
  buried in documents and tool results, markdown exfiltration, paraphrased overrides,
  refusal suppression, many-shot, texts that quote or discuss an attack). A row of
  ``turns`` is one user's consecutive short prompts, joined as the behaviour layer's
  rejoin reads them: harmless turns that only name instructions or rules, and attacks
  split over several turns.
- The **spent** fresh splits of ``tests/filter/heldout`` (``SPENT``): written by hand as
  frozen evaluation splits, each looked at for decisions until it could no longer give
  a clean measure (see ``weights/MODEL_CARD.md``). Neither the split that still
  measures (``tools.filter_heldout.DEFAULT_SPLIT``) nor the benign rows of the spent
  splits that set the threshold (``CALIBRATION``, read by ``tools.calibrate_filter``) are
  read here; their attacks are.

Every row trains: the shipped threshold is set on the calibration splits' benign rows
(``tools.calibrate_filter``), not on a dev share of these. Until the eleventh session a
fifth of the families was held out as dev, and a fifth of the hand-written rows went
unread (see ``weights/MODEL_CARD.md``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from mesh.filter.rejoin import PROMPT_BREAK

ROOT = Path(__file__).resolve().parents[2]
HANDWRITTEN_DIR = Path(__file__).resolve().parent / "handwritten"
HELDOUT_DIR = ROOT / "tests" / "filter" / "heldout"
SPENT = (
    "fresh_test.jsonl",
    "fresh_test_2.jsonl",
    "fresh_test_3.jsonl",
    "fresh_test_4.jsonl",
    "fresh_test_5.jsonl",
    "fresh_test_6.jsonl",
    "fresh_test_7.jsonl",
    "fresh_test_8.jsonl",
    "fresh_test_9.jsonl",
    "fresh_test_13.jsonl",
    "fresh_test_15.jsonl",
    "fresh_test_17.jsonl",
    "fresh_test_18.jsonl",
    "fresh_test_19.jsonl",
    "fresh_test_20.jsonl",
    "fresh_test_21.jsonl",
    "fresh_test_22.jsonl",
    "fresh_test_23.jsonl",
    "fresh_test_24.jsonl",
    "fresh_test_25.jsonl",
    "fresh_test_26.jsonl",
    "fresh_test_27.jsonl",
    "fresh_test_28.jsonl",
    "fresh_test_29.jsonl",
    "fresh_test_30.jsonl",
    "fresh_test_31.jsonl",
    "fresh_test_32.jsonl",
    "fresh_test_33.jsonl",
    "fresh_test_34.jsonl",
    "fresh_test_35.jsonl",
    "fresh_test_36.jsonl",
    "fresh_test_37.jsonl",
    "fresh_test_38.jsonl",
    "fresh_test_39.jsonl",
    "fresh_test_40.jsonl",
    "fresh_test_41.jsonl",
    "fresh_test_42.jsonl",
    "fresh_test_43.jsonl",
    "fresh_test_44.jsonl",
)
# Spent too: their benign rows set the threshold (tools/calibrate_filter.py) and are never
# trained on; their attacks train (the threshold reads benign rows only).
CALIBRATION = (
    "fresh_test_10.jsonl",
    "fresh_test_11.jsonl",
    "fresh_test_12.jsonl",
    "fresh_test_14.jsonl",
    "fresh_test_16.jsonl",
)


def handwritten_records() -> Iterator[dict]:
    """Records ``{text, label, category, language, family, split, encoding}``, category
    prefixed ``hand_`` (the source stays visible in per-category reports)."""
    paths = sorted(HANDWRITTEN_DIR.glob("*.jsonl")) + [HELDOUT_DIR / name for name in SPENT]
    paths += [HELDOUT_DIR / name for name in CALIBRATION]
    for path in paths:
        source = path.stem
        with path.open(encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                row = json.loads(line)
                if path.name in CALIBRATION and row["label"] != "attack":
                    continue
                family = f"{source}/{row['family']}"
                yield {"text": _text(row), "label": row["label"],
                       "category": f"hand_{row['category']}", "language": row["language"],
                       "family": family, "split": "train",
                       "encoding": row.get("encoding", "none")}  # fmt: skip


def _text(row: dict) -> str:
    """A row's text; a row of ``turns`` (one user's consecutive short prompts) as the
    behaviour layer's rejoin reads them, joined by its prompt break."""
    return row["text"] if "text" in row else PROMPT_BREAK.join(row["turns"])
