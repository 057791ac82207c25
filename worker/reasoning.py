"""Split a thinking model's streamed output into hidden reasoning and the visible answer.

Thinking models (Qwen3, DeepSeek-R1, QwQ, Magistral...) write `<think>…</think>` before the
answer. The engine feeds each decoded text delta (with the number of tokens it covers) to a
per-sequence `ReasoningSplitter` and gets `(reasoning_delta, answer_delta)` back, markers
removed. A marker may arrive split over several deltas ("</th" + "ink>"), so a suffix that
could still become a marker is held back until the next delta (or `flush()`) resolves it.

Reasoning tokens are billed at 21 €/M (SPEC §2): the splitter counts the tokens emitted while
inside think, markers included. A delta that mixes both sides (several tokens decoded at once)
is shared in proportion to its characters; with the usual one-token deltas this is exact.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


def is_thinking_model(
    tokenizer_vocab: Container[str] | Iterable[str] | None, chat_template: str | None
) -> bool:
    """True when the vocabulary has both think markers or the chat template mentions them."""
    if tokenizer_vocab is not None:
        vocab = tokenizer_vocab if isinstance(tokenizer_vocab, Container) else set(tokenizer_vocab)
        if OPEN_TAG in vocab and CLOSE_TAG in vocab:
            return True
    return bool(chat_template) and (OPEN_TAG in chat_template or CLOSE_TAG in chat_template)


def prompt_opens_think(prompt_text: str) -> bool:
    """True when the rendered prompt already opened a think block (templates that end with
    '<think>\\n', e.g. DeepSeek-R1): the generation then starts inside reasoning."""
    return prompt_text.rfind(OPEN_TAG) > prompt_text.rfind(CLOSE_TAG)


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of `tag`."""
    for k in range(min(len(text), len(tag) - 1), 0, -1):
        if text.endswith(tag[:k]):
            return k
    return 0


class ReasoningSplitter:
    def __init__(
        self,
        *,
        start_in_reasoning: bool = False,
        open_tag: str = OPEN_TAG,
        close_tag: str = CLOSE_TAG,
    ) -> None:
        self.open_tag, self.close_tag = open_tag, close_tag
        self.inside = start_in_reasoning
        self.reasoning_tokens = 0
        self.answer_tokens = 0
        self._held = ""  # a suffix that may be the start of a marker
        self._pending_tokens = 0  # tokens whose characters are all still held
        self._strip_next = start_in_reasoning  # drop whitespace right after a marker
        self._reset_call()

    def _reset_call(self) -> None:
        self._reasoning: list[str] = []
        self._answer: list[str] = []
        self._r_chars = 0
        self._a_chars = 0

    def feed(self, text: str, num_tokens: int = 0) -> tuple[str, str]:
        """Consume one decoded delta; return the (reasoning, answer) text it releases."""
        self._pending_tokens += num_tokens
        buf = self._held + text
        self._held = ""
        while buf:
            tag = self.close_tag if self.inside else self.open_tag
            i = buf.find(tag)
            if i < 0:
                keep = _partial_suffix(buf, tag)
                self._emit(buf[: len(buf) - keep])
                self._held = buf[len(buf) - keep :]
                break
            self._emit(buf[:i])
            self._r_chars += len(tag)  # markers count as reasoning
            self.inside = not self.inside
            self._strip_next = True
            buf = buf[i + len(tag) :]
        return self._finish_call()

    def flush(self) -> tuple[str, str]:
        """End of the sequence: a held partial marker was literal text after all. An
        unclosed think (max_tokens reached while reasoning) stays all reasoning."""
        held, self._held = self._held, ""
        self._emit(held)
        if self._r_chars + self._a_chars == 0 and self._pending_tokens:
            self._r_chars, self._a_chars = (1, 0) if self.inside else (0, 1)
        return self._finish_call()

    def _emit(self, text: str) -> None:
        if not text:
            return
        size = len(text)
        if self._strip_next:
            text = text.lstrip()
            self._strip_next = not text  # still only whitespace: keep stripping
        if self.inside:
            self._r_chars += size
            self._reasoning.append(text)
        else:
            self._a_chars += size
            self._answer.append(text)

    def _finish_call(self) -> tuple[str, str]:
        self._account_tokens()
        out = "".join(self._reasoning), "".join(self._answer)
        self._reset_call()
        return out

    def _account_tokens(self) -> None:
        total = self._r_chars + self._a_chars
        if total == 0 or self._pending_tokens == 0:
            return  # everything held: the tokens wait for their characters to resolve
        n = self._pending_tokens
        reasoning = (2 * n * self._r_chars + total) // (2 * total)  # rounded share
        self.reasoning_tokens += reasoning
        self.answer_tokens += n - reasoning
        self._pending_tokens = 0
