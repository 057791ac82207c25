"""Stop strings split across tokens, EOS and max_tokens."""

from __future__ import annotations

from worker.sequence import FinishReason
from worker.stop import StopChecker, StopStrings


class _PieceDetokenizer:
    """Token id i is the text pieces[i]."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    def add(self, token_id: int) -> str:
        return self.pieces[token_id]


def _run(pieces: list[str], stop: list[str], max_tokens: int = 100, eos: int | None = None):
    checker = StopChecker(
        _PieceDetokenizer(pieces), stop, [] if eos is None else [eos], False, max_tokens
    )
    emitted, reason = [], None
    for n, token_id in enumerate(range(len(pieces)), start=1):
        text, reason = checker.add(token_id, n)
        emitted.append(text)
        if reason:
            break
    return emitted, reason


def test_stop_string_split_across_tokens_is_never_emitted() -> None:
    emitted, reason = _run(["Hello", " wor", "ld", "END", "never"], stop=["worldEND"])
    assert "".join(emitted) == "Hello "
    assert reason is FinishReason.STOP
    assert emitted[1:3] == [" ", ""]  # "wor", "world" could start the stop string: held back


def test_held_back_text_is_released_when_it_is_not_a_stop() -> None:
    emitted, reason = _run(["a", "<", "b", "c"], stop=["<|"])
    assert emitted == ["a", "", "<b", "c"]
    assert reason is None


def test_text_before_the_stop_in_the_same_token_is_emitted() -> None:
    emitted, reason = _run(["one. two", "three"], stop=["."])
    assert emitted == ["one"] and reason is FinishReason.STOP


def test_earliest_of_several_stop_strings_wins() -> None:
    streamer = StopStrings(["cd", "bc"])
    assert streamer.feed("abcd") == ("a", True)


def test_eos_stops_without_its_text_and_flushes_held_text() -> None:
    emitted, reason = _run(["x", "<", "</s>"], stop=["<|"], eos=2)
    assert "".join(emitted) == "x<" and reason is FinishReason.STOP


def test_max_tokens_finishes_with_length_and_flushes() -> None:
    emitted, reason = _run(["a", "b", "<", "z"], stop=["<|"], max_tokens=3)
    assert "".join(emitted) == "ab<" and reason is FinishReason.LENGTH


def test_ignore_eos_keeps_going() -> None:
    checker = StopChecker(_PieceDetokenizer(["a", "</s>"]), [], [1], True, 10)
    assert checker.add(1, 1) == ("</s>", None)
