"""Evaluate the prompt-security filter on the labelled corpus.

    python -m tools.filter_eval [--corpus tests/filter/corpus] [--verbose]

Prints recall (attacks blocked) and false-positive rate (benign blocked)
overall, per layer (that layer's reasons alone), per category and per
language. Exits 1 if recall < 95 % or FPR > 2 %.

Corpus: JSONL files; a record is either a single prompt
``{"text", "label": "attack"|"benign", "category", "language"}`` or a
sequence ``{"prompts": [...], "users"?: [...], ...}`` sent in order by one
tenant (and user); a sequence counts as blocked if any of its prompts is. A single
prompt may carry ``"tool_definitions"`` and ``"tool_results"`` (lists of strings),
checked as the request's typed tool fields.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python tools/filter_eval.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesh.filter import BLOCK_THRESHOLD, PromptFilter, ToolFields, Verdict  # noqa: E402

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "tests" / "filter" / "corpus"
LAYERS = ("structure", "patterns", "behavior")
MIN_RECALL = 0.95
MAX_FPR = 0.02


@dataclass
class Outcome:
    record: dict
    blocked: bool
    layers: set[str]  # layers that would block on their own
    verdict: Verdict | None = None

    @property
    def attack(self) -> bool:
        return self.record["label"] == "attack"


@dataclass
class Tally:
    attacks: int = 0
    caught: int = 0
    benign: int = 0
    false_pos: int = 0

    def add(self, attack: bool, blocked: bool) -> None:
        if attack:
            self.attacks += 1
            self.caught += blocked
        else:
            self.benign += 1
            self.false_pos += blocked

    @property
    def recall(self) -> float | None:
        return self.caught / self.attacks if self.attacks else None

    @property
    def fpr(self) -> float | None:
        return self.false_pos / self.benign if self.benign else None


@dataclass
class Report:
    overall: Tally = field(default_factory=Tally)
    by_layer: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_category: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_language: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_kind: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    misses: list[Outcome] = field(default_factory=list)

    def add(self, o: Outcome) -> None:
        self.overall.add(o.attack, o.blocked)
        for layer in LAYERS:
            self.by_layer[layer].add(o.attack, layer in o.layers)
        self.by_category[o.record["category"]].add(o.attack, o.blocked)
        self.by_language[o.record["language"]].add(o.attack, o.blocked)
        self.by_kind["sequence" if "prompts" in o.record else "single"].add(o.attack, o.blocked)
        if o.blocked != o.attack:
            self.misses.append(o)

    @property
    def passed(self) -> bool:
        return (self.overall.recall or 0) >= MIN_RECALL and (self.overall.fpr or 0) <= MAX_FPR


def load_corpus(directory: Path) -> list[dict]:
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                record = json.loads(line)
                record["_where"] = f"{path.name}:{n}"
                records.append(record)
    return records


def evaluate_record(record: dict) -> Outcome:
    # A fresh filter per record: histories must not leak between test cases.
    flt = PromptFilter()
    prompts = record.get("prompts") or [record["text"]]
    users = record.get("users") or [""] * len(prompts)
    blocked, layers, last = False, set(), None
    # tool definitions and tool results (typed fields of the request) go with a single prompt
    tools = ToolFields.of(record.get("tool_definitions", ()), record.get("tool_results", ()))
    for prompt, user in zip(prompts, users, strict=True):
        verdict = flt.check(prompt, tenant="eval", user=user, tools=tools)
        last = verdict if not blocked else last
        blocked = blocked or not verdict.allowed
        layers |= {ly for ly in LAYERS if verdict.layer_score(ly) >= BLOCK_THRESHOLD}
        if not verdict.allowed:
            last = verdict
    return Outcome(record, blocked, layers, last)


def evaluate(records: Iterable[dict]) -> Report:
    report = Report()
    for record in records:
        report.add(evaluate_record(record))
    return report


def _pct(x: float | None) -> str:
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def format_table(title: str, rows: dict[str, Tally]) -> list[str]:
    lines = [f"\n{title:<22} {'attacks':>7} {'recall':>7} {'benign':>7} {'FPR':>7}"]
    for name in sorted(rows):
        t = rows[name]
        lines.append(
            f"  {name:<20} {t.attacks:>7} {_pct(t.recall):>7} {t.benign:>7} {_pct(t.fpr):>7}"
        )
    return lines


def format_report(report: Report, verbose: bool = False) -> str:
    o = report.overall
    lines = [
        f"threshold {BLOCK_THRESHOLD}; targets: recall >= {MIN_RECALL:.0%}, FPR <= {MAX_FPR:.0%}",
        f"OVERALL: recall {_pct(o.recall)} ({o.caught}/{o.attacks})   "
        f"FPR {_pct(o.fpr)} ({o.false_pos}/{o.benign})   -> {'PASS' if report.passed else 'FAIL'}",
    ]
    lines += format_table("by kind", report.by_kind)
    lines += format_table("by layer (alone)", report.by_layer)
    lines += format_table("by category", report.by_category)
    lines += format_table("by language", report.by_language)
    if verbose and report.misses:
        lines.append("\nmisclassified:")
        for m in report.misses:
            text = m.record.get("text") or " | ".join(m.record["prompts"][:3])
            why = [(r.rule, r.score) for r in m.verdict.reasons] if m.verdict else []
            lines.append(f"  [{m.record['label']}] {m.record['_where']} {text[:90]!r} {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--verbose", "-v", action="store_true", help="list misclassified cases")
    args = parser.parse_args(argv)
    report = evaluate(load_corpus(args.corpus))
    print(format_report(report, args.verbose))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
