"""The worker's one context-length rule: a sequence's prompt tokens plus the tokens it may
generate fit in the window, `min(--max-model-len, the model's own context length)` (the KV
cache is sized to it). Checked twice on the way in, with the same rule: before tokenising, on
a lower bound of the prompt's tokens from its size in bytes (`check_size`), and after
(`max_tokens`, which also resolves an unset max_tokens to the room left). Both raise
`ContextLengthExceeded`; the router's pre-check asks the worker (CountTokens) rather than
applying a rule of its own; both refuse through `mesh.prompt_bounds.check_fits`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesh.prompt_bounds import check_fits


@dataclass(frozen=True, slots=True)
class ContextWindow:
    length: int  # tokens: prompt + generated

    @classmethod
    def of(cls, max_model_len: int, model_context_length: int) -> ContextWindow:
        """The configured bound, never past what the model was trained for."""
        return cls(min(max_model_len, model_context_length))

    def check_size(self, at_least: int, num_bytes: int, max_tokens: int | None) -> None:
        """Refuses, before tokenising, a prompt of `num_bytes` that has at least `at_least`
        tokens (Tokenizer.min_tokens) and so cannot fit with max_tokens (None or 0: one)."""
        size = f"your prompt of {num_bytes} bytes has at least {at_least} tokens"
        check_fits(self.length, at_least, max_tokens or 0, size, "messages", counted=False)

    def max_tokens(self, num_prompt_tokens: int, requested: int | None) -> int:
        """-> the tokens this sequence may generate: `requested`, or (None or 0) all the room
        left; raises when that is under one token or `requested` does not fit."""
        size = f"your prompt has {num_prompt_tokens} tokens"
        check_fits(self.length, num_prompt_tokens, requested or 0, size, "messages", counted=True)
        return requested or self.length - num_prompt_tokens
