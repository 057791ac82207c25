"""Evaluate the whole filter (rules + learned layer + decoding) on data it never saw.

    python -m tools.filter_heldout [--split tests/filter/heldout/fresh_test_26.jsonl]
                                   [--corpus tests/filter/corpus] [--verbose]

Two reports:
1. the frozen test split of the generated data (template families the learned
   layer was not trained or tuned on): overall, per language, per category,
   per encoding; plus the learned layer alone;
2. the repo's hand-written corpus ``tests/filter/corpus`` (never used for
   training: out of distribution for the learned layer), single prompts and
   multi-request sequences, with the same full verdict.

Exits 1 when the frozen split misses the model card's bar: recall >= 97 %,
FPR <= 1 %, every language >= 90 % recall and <= 3 % FPR.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesh.filter import PromptFilter, Verdict, engine, learned  # noqa: E402
from mesh.filter.decode import check_decoded  # noqa: E402
from mesh.filter.learned_prompt import check_learned_prompt  # noqa: E402
from mesh.filter.normalize import normalize  # noqa: E402
from tools.filter_eval import DEFAULT_CORPUS, Tally, format_table, load_corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = ROOT / "tests" / "filter" / "heldout"
# Written by hand apart from the training data (see its README); the generated
# learned_test.jsonl has been looked at too often to measure a change.
# The spent ones train or set the threshold (tools/filter_data/handwritten.py: SPENT,
# CALIBRATION); the test data checks that this one is in neither.
DEFAULT_SPLIT = HELDOUT / "fresh_test_45.jsonl"
GENERATED_SPLIT = HELDOUT / "learned_test.jsonl"
RULE_LAYERS = ("structure", "patterns")
BAR = {"recall": 0.97, "fpr": 0.01, "lang_recall": 0.90, "lang_fpr": 0.03}


def full_check(flt: PromptFilter, prompt: str, tenant: str = "eval", user: str = "") -> Verdict:
    """The filter's verdict, with the learned and decoding layers added when the
    engine does not include them yet (so this tool measures the same thing before
    and after the integration)."""
    verdict = flt.check(prompt, tenant=tenant, user=user)
    if getattr(engine, "LEARNED_LAYER", False):
        return verdict
    extra = check_learned_prompt(normalize(prompt)) + check_decoded(prompt)
    return Verdict.from_reasons(verdict.reasons + extra, flt.threshold)


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def evaluate_split(records: list[dict]) -> dict[str, dict[str, Tally]]:
    tables: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for r in records:
        verdict = full_check(PromptFilter(), r["text"])
        attack, blocked = r["label"] == "attack", not verdict.allowed
        tables["overall"]["all"].add(attack, blocked)
        tables["learned layer alone"]["learned"].add(attack, verdict.layer_score("learned") >= 0.7)
        rules = [x for x in verdict.reasons if x.layer in RULE_LAYERS and "@" not in x.rule]
        tables["rules alone (structure+patterns)"]["rules"].add(
            attack, not Verdict.from_reasons(rules).allowed
        )
        tables["by language"][r["language"]].add(attack, blocked)
        tables["by category"][r["category"]].add(attack, blocked)
        tables["by encoding"][r.get("encoding", "none")].add(attack, blocked)
        if blocked != attack:
            tables["_misses"][
                f"{r['label']}|{r['category']}|{r['language']}|{r['text'][:100]!r}"
            ].add(attack, blocked)
    return tables


def evaluate_corpus(records: list[dict]) -> dict[str, dict[str, Tally]]:
    tables: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for r in records:
        flt = PromptFilter()
        prompts = r.get("prompts") or [r["text"]]
        users = r.get("users") or [""] * len(prompts)
        blocked = False
        for prompt, user in zip(prompts, users, strict=True):
            blocked |= not full_check(flt, prompt, user=user).allowed
        attack = r["label"] == "attack"
        kind = "sequence" if "prompts" in r else "single"
        tables["overall"]["all"].add(attack, blocked)
        tables["by kind"][kind].add(attack, blocked)
        tables["by language"][r["language"]].add(attack, blocked)
        tables["by category"][r["category"]].add(attack, blocked)
        if blocked != attack:
            text = r.get("text") or " | ".join(r["prompts"][:3])
            tables["_misses"][f"{r['label']}|{r['_where']}|{text[:100]!r}"].add(attack, blocked)
    return tables


def passes(tables: dict[str, dict[str, Tally]]) -> bool:
    o = tables["overall"]["all"]
    ok = (o.recall or 0) >= BAR["recall"] and (o.fpr or 0) <= BAR["fpr"]
    for t in tables["by language"].values():
        ok &= (t.recall is None or t.recall >= BAR["lang_recall"]) and (
            t.fpr is None or t.fpr <= BAR["lang_fpr"]
        )
    return ok


def render(title: str, tables: dict[str, dict[str, Tally]], verbose: bool) -> str:
    lines = [f"===== {title}"]
    for name, rows in tables.items():
        if name != "_misses":
            lines += format_table(name, rows)
    if verbose:
        lines.append("\nmisclassified:")
        lines += [f"  {k}" for k in tables["_misses"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", type=Path, default=DEFAULT_SPLIT)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("--weights", type=Path, help="the learned layer's weights (a retrain)")
    args = parser.parse_args(argv)
    if args.weights:
        learned.use_weights(args.weights)
    split = evaluate_split(load_jsonl(args.split))
    print(render(f"frozen test split {args.split.name}", split, args.verbose))
    corpus = evaluate_corpus(load_corpus(args.corpus))
    print(render(f"repo corpus {args.corpus} (out of distribution)", corpus, args.verbose))
    ok = passes(split)
    print(f"\nfrozen split vs bar {BAR}: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
