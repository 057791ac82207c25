"""The first-character guard (mesh/filter/fast_re.py) finds exactly what the plain pattern
finds: every guarded pattern of the filter, compared on real prompts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mesh.filter import engine, fast_re  # noqa: F401 (engine: every rule module loaded)
from tools.filter_bench import adversarial

HERE = Path(__file__).resolve().parent


def _texts() -> list[str]:
    rows = []
    for path in [
        *sorted((HERE / "corpus").glob("*.jsonl")),
        HERE / "heldout" / "fresh_test_41.jsonl",
    ]:
        rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows[::2] if "text" in r]  # every other row: the suite's time
    texts += [p for r in rows for p in r.get("prompts", []) if isinstance(p, str)]
    texts += [t[:3000] for t in adversarial(3000).values()]
    # the rules read raw, casefolded and look-alike-folded text
    return texts + [t.casefold() for t in texts]


TEXTS = _texts()


def _found(pattern: re.Pattern[str], text: str) -> list[tuple[tuple[int, int], tuple]]:
    return [(m.span(), m.groups()) for m in pattern.finditer(text)]


def test_the_filter_guards_its_long_word_lists() -> None:
    assert len(fast_re.GUARDED) >= 50
    names = {guarded.pattern[:4] for _plain, guarded in fast_re.GUARDED}
    assert names == {"(?=["}


@pytest.mark.parametrize("index", range(len(fast_re.GUARDED)))
def test_a_guarded_pattern_finds_what_the_plain_one_finds(index: int) -> None:
    plain, guarded = fast_re.GUARDED[index]
    for text in TEXTS:
        assert _found(guarded, text) == _found(plain, text), (plain.pattern[:80], text[:80])
    assert guarded.sub("#", TEXTS[0]) == plain.sub("#", TEXTS[0])


def test_no_guard_where_the_engine_skips_ahead_or_a_match_may_be_empty() -> None:
    for pattern in (
        "ignore (?:all|the)",
        "[ab]c",
        "a|b",
        r"\b(?:x|y)?",
        r".+z",
        r"\w+ing",
        r"(a)\1",
    ):
        assert fast_re.compile(pattern).pattern == pattern


def test_no_guard_when_a_group_changes_its_case_flags() -> None:
    assert fast_re.compile(r"\b(?:(?i:ignore)|drop)").pattern == r"\b(?:(?i:ignore)|drop)"
    # global flags must open the pattern: a guard in front of them would not compile
    assert fast_re.compile(r"(?i)\b(?:ignore|drop)").pattern == r"(?i)\b(?:ignore|drop)"


def test_the_guard_holds_the_first_letters_of_every_branch() -> None:
    guarded = fast_re.compile(r"\b(?:ignore|(?<!not )forget\w*|über[a-c]+)\b")
    assert guarded.pattern.startswith("(?=[fiü])")
    assert guarded.search("please forgetting it").group() == "forgetting"
    assert guarded.search("überb") and not guarded.search("norefo")


def test_case_insensitive_and_verbose_patterns_keep_their_meaning() -> None:
    assert fast_re.compile(r"\b(?:IGNORE|drop)\b", re.IGNORECASE).search("Ignore it")
    verbose = fast_re.compile(r"\b(?:ignore | drop)  # a comment to the end", re.VERBOSE)
    assert verbose.search("please drop it").group() == "drop"
