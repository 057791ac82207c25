"""mesh.prompt_bounds: a token-count floor from a prompt's bytes, never above the real count."""

from __future__ import annotations

import random

import pytest

from mesh.prompt_bounds import (
    DEFAULT_MAX_TOKEN_BYTES,
    DEFAULT_MAX_TOKEN_RUNS,
    count_runs,
    token_floor,
)

# The prompt of issue #14 point 1 (590 KB): refused for an 8,192-token window by its bytes.
ISSUE_PROMPT = "Add up the following numbers: " + " ".join(str(i) for i in range(100_000))


def test_runs_are_maximal_repeats_of_one_byte() -> None:
    assert [count_runs(b) for b in (b"", b"a", b"aaa", b"aab", b"aba", b"  \n  ")] == [
        0,
        1,
        1,
        2,
        3,
        3,
    ]


def test_the_issue_prompt_cannot_fit_an_8192_token_window() -> None:
    floor = token_floor([ISSUE_PROMPT])
    assert floor.num_bytes == len(ISSUE_PROMPT.encode())
    assert floor.tokens > 8192


def test_repetitive_text_is_bounded_by_bytes_and_boundaries_lose_one_run_each() -> None:
    assert token_floor([" " * 1280]).tokens == 1280 // DEFAULT_MAX_TOKEN_BYTES
    # Two texts "ab" joined by markup could share one run at the boundary: 4 - 1 runs.
    assert token_floor(["ab", "ab"], max_token_bytes=1000, max_token_runs=1).tokens == 3


def _byte_level_table() -> dict[str, int]:
    """GPT-2's bytes_to_unicode, inverted (byte-level BPE writes byte b as this char)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    table, n = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + n)] = b
            n += 1
    return table


@pytest.fixture(scope="module")
def smollm2():
    loader = pytest.importorskip("worker.loader")
    return loader.load_tokenizer("smollm2:135m").tok


def test_the_defaults_bound_every_smollm2_token(smollm2) -> None:
    """Soundness of the defaults for the default chat model: no vocabulary entry spans more
    bytes or more runs than the floor assumes (measured: 81 bytes, 25 runs)."""
    table = _byte_level_table()
    longest = most_runs = 0
    for token in smollm2.get_vocab(with_added_tokens=True):
        data = bytes(table[c] for c in token) if all(c in table for c in token) else token.encode()
        longest, most_runs = max(longest, len(data)), max(most_runs, count_runs(data))
    assert longest <= DEFAULT_MAX_TOKEN_BYTES and most_runs <= DEFAULT_MAX_TOKEN_RUNS


def test_the_floor_never_exceeds_the_real_count(smollm2) -> None:
    rng = random.Random(14)
    alphabet = "abcxyz ABC 0123456789 \n\t-=#.,;:!?éü中文😀"
    texts = [
        ISSUE_PROMPT[:20_000],
        " " * 5000,
        "\n" + " " * 80 + "\n" * 300,
        "#" * 4000 + "-" * 4000 + "=" * 4000,
        " ManagementPlaneProtection" * 200,
        " disproportionately counterproductive" * 200,
        "─" * 3000,
        "".join(rng.choice(alphabet) for _ in range(20_000)),
    ]
    for text in texts:
        real = len(smollm2.encode(text, add_special_tokens=False).ids)
        assert token_floor([text]).tokens <= real, text[:40]


def test_a_limit_of_0_drops_its_bound_instead_of_guessing():
    text = "ab" * 100  # 200 bytes, 200 runs
    assert token_floor([text], max_token_bytes=10, max_token_runs=0).tokens == 20
    assert token_floor([text], max_token_bytes=0, max_token_runs=10).tokens == 20
    assert token_floor([text], max_token_bytes=0, max_token_runs=0).tokens == 0
