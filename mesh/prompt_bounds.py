"""The context-length rule (`fits`), and a lower bound on a prompt's token count without
tokenising (linear, in C via numpy).

Tokenising a long prompt holds the GIL for seconds; a prompt that cannot possibly fit a
model's window is refused from its bytes instead. Two bounds, both sound for any tokenizer
whose vocabulary respects the two limits below (every token is a substring of the text it
covers, so the tokens of a text cover all its bytes):

- bytes: a token covers at most `max_token_bytes` bytes, so N bytes need at least
  ceil(N / max_token_bytes) tokens. Long tokens are runs of one character (SmolLM2's
  longest: a newline and 80 spaces, 81 bytes), so this bound is weak on its own.
- runs: split the UTF-8 bytes into maximal runs of one repeated byte ("aab" has 2 runs).
  A token that overlaps j runs of the text contains j runs itself, and no vocabulary token
  contains more than `max_token_runs` runs (SmolLM2: 25, "ManagementPlaneProtection"), so R
  runs need at least ceil(R / max_token_runs) tokens. Ordinary text has about one run per
  byte, so this is the bound that refuses a 600 KB prompt for an 8,192-token window.

Several texts (the messages of a chat) are joined by the template's markup, which can join
the last run of one text with the first run of the next: one run per boundary is dropped.

The limits are the model's: each worker says its vocabulary's in Info (worker/token_bounds.py,
0 where a limit is not sound for its tokenizer); the defaults below are for workers that do
not say. A limit of 0 drops that bound (no guess).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mesh.errors import ContextLengthExceeded

# Defaults, above what byte-level BPE vocabularies of the Llama / GPT-2 / SmolLM families
# hold (SmolLM2-135M, measured from its GGUF vocabulary: 81 bytes, 25 runs).
DEFAULT_MAX_TOKEN_BYTES = 128
DEFAULT_MAX_TOKEN_RUNS = 32


@dataclass(frozen=True, slots=True)
class TokenFloor:
    tokens: int  # the prompt has at least this many tokens
    num_bytes: int


def count_runs(data: bytes) -> int:
    """Maximal runs of one repeated byte: 0 for b"", 1 for b"aaa", 3 for b"aba"."""
    if not data:
        return 0
    a = np.frombuffer(data, dtype=np.uint8)
    return 1 + int(np.count_nonzero(a[1:] != a[:-1]))


def token_floor(
    texts: Sequence[str],
    *,
    max_token_bytes: int = DEFAULT_MAX_TOKEN_BYTES,
    max_token_runs: int = DEFAULT_MAX_TOKEN_RUNS,
) -> TokenFloor:
    """At least how many tokens `texts` (joined by any markup) take; never an overestimate.
    A limit <= 0 (unknown, or not sound for the tokenizer) drops its bound."""
    num_bytes = num_runs = 0
    for text in texts:
        # surrogatepass: a lone surrogate still has a length (the edge refuses it anyway).
        data = text.encode("utf-8", "surrogatepass")
        num_bytes += len(data)
        num_runs += count_runs(data)
    num_runs = max(0, num_runs - max(0, len(texts) - 1))
    tokens = max(
        math.ceil(num_bytes / max_token_bytes) if max_token_bytes > 0 else 0,
        math.ceil(num_runs / max_token_runs) if max_token_runs > 0 else 0,
    )
    return TokenFloor(tokens=tokens, num_bytes=num_bytes)


def fits(window: int, num_prompt: int, max_tokens: int | None) -> bool:
    """The context-length rule, the same wherever a prompt is checked (the router by its
    floor or a worker's count, the engine by its own): the prompt's tokens + max_tokens fit
    the window; max_tokens 0 or None ("up to the window") still needs one token of room."""
    return num_prompt + max(max_tokens or 0, 1) <= window


def check_fits(
    window: int, num_prompt: int, max_tokens: int, size: str, param: str, *, counted: bool
) -> None:
    """Raises ContextLengthExceeded unless the prompt `fits`: the one refusal the router's
    pre-check and a worker's engine both give. `size` says how the prompt was measured
    ("your prompt has N tokens"); a `counted` prompt (exact) with max_tokens names max_tokens
    in the message even when the prompt alone fills the window; a floor does not. `param` is
    the field holding the prompt (messages or prompt)."""
    if fits(window, num_prompt, max_tokens):
        return
    past = num_prompt >= window
    if not max_tokens or (past and not counted):
        raise ContextLengthExceeded(
            f"This model's maximum context length is {window} tokens; {size}, which "
            "leaves no room to generate. Shorten the prompt.",
            param=param,
        )
    raise ContextLengthExceeded(
        f"This model's maximum context length is {window} tokens; {size} and max_tokens "
        f"asks for {max_tokens}. Shorten the prompt or lower max_tokens.",
        param=param if past else "max_tokens",
    )
