"""The matcher's automaton on small sequences, and the matcher's modules stay small (#19)."""

from __future__ import annotations

from pathlib import Path

from mesh.filter import matcher
from mesh.filter.automaton import ConceptSequence, SequenceSet, Step
from mesh.filter.hits import Hit, Stream, collapse_stream

FILTER_DIR = Path(matcher.__file__).parent
MATCHER_MODULES = ("matcher", "lexicon_index", "hits", "latin", "cjk", "automaton")


def _seq(*steps: str, gap: float = 2, unless: str = "") -> ConceptSequence:
    """Concepts named by the tokens of :func:`_hits` (lower case here, upper case there)."""
    blockers = frozenset(unless.upper().split("|")) if unless else frozenset()
    return ConceptSequence(
        tuple(frozenset(s.upper().split("|")) for s in steps), (gap,) * (len(steps) - 1), blockers
    )


def _hits(*tokens: str) -> list[Hit]:
    """One hit per token; its concept is the token upper-cased, "-" is a non-hit."""
    return [Hit(float(i), t, frozenset({t.upper()})) for i, t in enumerate(tokens) if t != "-"]


def test_matcher_modules_stay_under_400_lines():
    sizes = {m: len((FILTER_DIR / f"{m}.py").read_text().splitlines()) for m in MATCHER_MODULES}
    assert all(n <= 400 for n in sizes.values()), sizes


def test_steps_are_named_and_ordered_later_first():
    automaton = SequenceSet([_seq("a", "b|a")])
    steps = automaton._steps(frozenset({"A"}))
    assert all(isinstance(s, Step) for s in steps)
    assert [(s.step, s.last, s.gap) for s in steps] == [(1, True, 2), (0, False, 0.0)]


def test_a_sequence_matches_within_its_gaps_only():
    automaton = SequenceSet([_seq("ignore", "rules")])
    (m,) = automaton.run(_hits("ignore", "-", "rules"))
    assert (m.seq_index, m.start, m.end, m.first_token, m.last_token) == (
        0,
        0.0,
        2.0,
        "ignore",
        "rules",
    )
    assert automaton.run(_hits("ignore", "-", "-", "rules")) == []


def test_a_blocker_just_before_step_zero_cancels_it():
    automaton = SequenceSet([_seq("ignore", "rules", unless="i")])
    assert automaton.run(_hits("i", "ignore", "rules")) == []
    assert len(automaton.run(_hits("i", "-", "-", "ignore", "rules"))) == 1


def test_one_match_per_group():
    automaton = SequenceSet([_seq("ignore", "rules"), _seq("forget", "rules")], groups=[0, 0])
    found = automaton.run(_hits("ignore", "rules", "forget", "rules"))
    assert [m.seq_index for m in found] == [0]


def test_the_first_via_of_a_match_is_kept():
    automaton = SequenceSet([_seq("ignore", "rules")])
    hits = [
        Hit(0.0, "ignore", frozenset({"IGNORE"})),
        Hit(1.0, "rules", frozenset({"RULES"}), "leet"),
    ]
    assert automaton.run(hits)[0].via == "leet"


def test_collapse_keeps_two_and_the_last_of_a_run():
    n = 6
    stream = Stream([float(i) for i in range(n)], ["ai"] * n, [frozenset({"AI"})] * n)
    assert collapse_stream(stream).pos == [0.0, 1.0, 5.0]
