"""Encoders and checker for the fresh, frozen filter evaluation split.

The split (tests/filter/heldout/fresh_test.jsonl) was written by hand, independently of the
training data and without running the filter. Its encoded rows were produced with the
encoders below so that every base64/hex/rot13/url payload decodes to the sentence it hides.
`python tools/filter_fresh_split.py --check` validates the committed file and prints counts.
"""

from __future__ import annotations

import argparse
import base64
import codecs
import json
import sys
import urllib.parse
from collections import Counter
from pathlib import Path

DEFAULT_PATH = Path("tests/filter/heldout/fresh_test.jsonl")
LANGUAGES = ("en", "fr", "es", "de", "it", "pt", "nl", "ru", "pl", "tr", "ar", "ko", "zh", "ja")
ENCODINGS = (
    "none",
    "base64",
    "hex",
    "rot13",
    "url",
    "leet",
    "spaced",
    "zero_width",
    "confusables",
    "mixed_script",
    "fullwidth",
)
FIELDS = ("text", "label", "category", "language", "family", "split", "encoding")

_LEET = str.maketrans(
    {
        "a": "4",
        "e": "3",
        "i": "1",
        "o": "0",
        "s": "5",
        "t": "7",
        "A": "4",
        "E": "3",
        "I": "1",
        "O": "0",
        "S": "5",
        "T": "7",
    }
)
# Latin letters with Cyrillic/Greek look-alikes; the reverse table serves Cyrillic text.
_CONFUSABLE = str.maketrans(
    {
        "a": "а",
        "e": "е",
        "o": "ο",
        "p": "р",
        "c": "с",
        "x": "х",
        "y": "у",
        "i": "і",
        "A": "Α",
        "E": "Е",
        "O": "О",
        "P": "Р",
        "C": "С",
        "T": "Т",
        "H": "Н",
        "K": "К",
        "M": "М",
        "B": "В",
    }
)
_CYR_TO_LATIN = str.maketrans(
    {
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "х": "x",
        "у": "y",
        "А": "A",
        "Е": "E",
        "О": "O",
        "Р": "P",
        "С": "C",
        "Т": "T",
        "Н": "H",
        "К": "K",
        "М": "M",
        "В": "B",
    }
)
_ZWSP = "\u200b"


def _fullwidth(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch == " ":
            out.append("\u3000")
        elif 0x21 <= code <= 0x7E:
            out.append(chr(code + 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


def _every_other_word(text: str, table: dict[int, str]) -> str:
    # Mixed script: only some words switch alphabet, the way hand-made evasions look.
    words = text.split(" ")
    return " ".join(w.translate(table) if i % 2 == 0 else w for i, w in enumerate(words))


def encode(text: str, kind: str) -> str:
    """Return `text` in the named encoding (see ENCODINGS)."""
    if kind == "none":
        return text
    if kind == "base64":
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
    if kind == "hex":
        return text.encode("utf-8").hex()
    if kind == "rot13":
        return codecs.encode(text, "rot13")
    if kind == "url":
        return urllib.parse.quote(text, safe="")
    if kind == "leet":
        return text.translate(_LEET)
    if kind == "spaced":
        return "   ".join(" ".join(word) for word in text.split())
    if kind == "zero_width":
        return " ".join(_ZWSP.join(word) for word in text.split(" "))
    if kind == "confusables":
        return text.translate(_CONFUSABLE)
    if kind == "mixed_script":
        latin = sum(ch.isascii() and ch.isalpha() for ch in text)
        table = _CONFUSABLE if latin * 2 > sum(ch.isalpha() for ch in text) else _CYR_TO_LATIN
        return _every_other_word(text, table)
    if kind == "fullwidth":
        return _fullwidth(text)
    raise ValueError(f"unknown encoding {kind!r}")


def make_row(
    text: str, label: str, category: str, language: str, family: str, encoding: str
) -> dict[str, str]:
    return {
        "text": text,
        "label": label,
        "category": category,
        "language": language,
        "family": family,
        "split": "fresh",
        "encoding": encoding,
    }


def check(path: Path, split: str = "fresh") -> list[str]:
    """Return the problems found in the split file (empty when it is valid)."""
    problems: list[str] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {n}: not JSON ({exc})")
            continue
        if tuple(row) != FIELDS:
            problems.append(f"line {n}: fields {tuple(row)}")
        if row.get("label") not in ("attack", "benign"):
            problems.append(f"line {n}: label {row.get('label')!r}")
        if row.get("language") not in LANGUAGES:
            problems.append(f"line {n}: language {row.get('language')!r}")
        if row.get("encoding") not in ENCODINGS:
            problems.append(f"line {n}: encoding {row.get('encoding')!r}")
        if row.get("split") != split:
            problems.append(f"line {n}: split {row.get('split')!r}")
        if not str(row.get("family", "")).startswith(f"{row.get('category')}/"):
            problems.append(f"line {n}: family {row.get('family')!r} not under its category")
        text = str(row.get("text", "")).strip()
        if not text:
            problems.append(f"line {n}: empty text")
        if text in seen:
            problems.append(f"line {n}: duplicate text")
        seen.add(text)
    return problems


def summary(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    by_lang = Counter((r["language"], r["label"]) for r in rows)
    lines = [f"{len(rows)} rows"]
    for lang in LANGUAGES:
        lines.append(
            f"  {lang}: attack={by_lang[(lang, 'attack')]} benign={by_lang[(lang, 'benign')]}"
        )
    for key in ("category", "encoding"):
        counts = Counter((r["label"], r[key]) for r in rows)
        lines.append(f"by {key}:")
        lines.extend(f"  {label:6} {name:20} {c}" for (label, name), c in sorted(counts.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", type=Path, nargs="?", const=DEFAULT_PATH, default=DEFAULT_PATH)
    # Later splits (fresh_test_2.jsonl: "fresh2") carry their own split name.
    parser.add_argument("--split", default="fresh", help="expected value of the split field")
    args = parser.parse_args(argv)
    problems = check(args.check, args.split)
    for problem in problems:
        print(problem, file=sys.stderr)
    print(summary(args.check))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
