"""Issue #14 point 1: a prompt that cannot fit is refused by its size before it is tokenised,
and tokenising never runs on the worker's event loop (which answers health probes)."""

from __future__ import annotations

import math
import threading

import pytest

from tests.worker.fakes import FakeRunner, SpyTokenizer
from worker.async_engine import AsyncLLMEngine
from worker.engine import LLMEngine
from worker.errors import ContextLengthExceeded
from worker.loader import load_tokenizer
from worker.sampling_params import SamplingParams
from worker.tokenizer import Tokenizer

# The issue's prompt: 589 KB of text, ~490k tokens, for a 2,048-token window.
BIG = "Add up the following numbers: " + " ".join(map(str, range(100000)))


def _spy_engine(max_model_len: int = 1000) -> tuple[LLMEngine, SpyTokenizer]:
    tok = SpyTokenizer()
    runner = FakeRunner(max_model_len=max_model_len)
    return LLMEngine(runner, tok, SpyTokenizer.eos_token_ids), tok  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def smollm2_tok() -> Tokenizer:
    return load_tokenizer("smollm2:135m")


@pytest.mark.parametrize("as_chat", [False, True])
def test_a_prompt_that_cannot_fit_is_never_tokenised(as_chat: bool) -> None:
    engine, tok = _spy_engine(max_model_len=1000)
    prompt = [{"role": "user", "content": "x" * 4000}] if as_chat else "x" * 4000
    with pytest.raises(ContextLengthExceeded, match="at least 100[0-9] tokens") as info:
        engine.add_request("r", prompt, SamplingParams(max_tokens=1))
    assert info.value.code == "context_length_exceeded"
    assert tok.calls == []  # refused by size alone
    with pytest.raises(ContextLengthExceeded):
        engine.count_prompt_tokens(prompt)
    assert tok.calls == []


def test_a_prompt_that_may_fit_is_tokenised_and_judged_by_its_tokens() -> None:
    engine, tok = _spy_engine(max_model_len=1000)
    # 3,000 bytes: at least 750 tokens by size (may fit), 3,000 by the tokenizer (does not)
    with pytest.raises(ContextLengthExceeded, match="has 3000 tokens"):
        engine.add_request("r", "x" * 3000, SamplingParams(max_tokens=1))
    assert len(tok.calls) == 1
    # max_tokens counts too: 200 bytes (>= 50 tokens) + 960 > 1000, refused untokenised
    with pytest.raises(ContextLengthExceeded, match="max_tokens asks for 960"):
        engine.add_request("r", "x" * 200, SamplingParams(max_tokens=960))
    assert len(tok.calls) == 1


async def test_tokenising_runs_off_the_event_loop() -> None:
    tok = SpyTokenizer()

    def build() -> LLMEngine:
        return LLMEngine(FakeRunner(max_model_len=1000), tok, SpyTokenizer.eos_token_ids)  # type: ignore[arg-type]

    engine = AsyncLLMEngine(build)
    engine.start()
    loop_thread = threading.get_ident()
    try:
        for prompt in ("abc", [{"role": "user", "content": "abc"}]):
            async for _ in engine.generate("r", prompt, SamplingParams(max_tokens=2)):
                pass
            await engine.count_prompt_tokens(prompt)
    finally:
        await engine.stop()
    assert len(tok.calls) >= 4  # each prompt was tokenised by generate and by the count
    assert loop_thread not in tok.calls


async def test_a_refused_prompt_leaves_no_stream_and_the_engine_serves_on() -> None:
    engine = AsyncLLMEngine(lambda: _spy_engine(max_model_len=1000)[0])
    engine.start()
    try:
        with pytest.raises(ContextLengthExceeded):
            async for _ in engine.generate("big", "x" * 8000, SamplingParams()):
                pass
        assert engine.num_active == 0
        outputs = [o async for o in engine.generate("ok", "abc", SamplingParams(max_tokens=3))]
        assert sum(o.num_tokens for o in outputs) == 3
    finally:
        await engine.stop()


# -- the real SmolLM2 tokenizer ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "\n" + " " * 80,  # SmolLM2's longest token: a newline and 80 spaces, 81 bytes
        "#" * 80,
        " " * 1000,
        "12345 abc 6",
        BIG[:5000],
        "😀" * 30,
        "<|im_start|>user 1<|im_end|><|endoftext|>",
        "x" * 3000,
    ],
)
def test_smollm2_size_bound_never_exceeds_the_tokens(smollm2_tok: Tokenizer, text: str) -> None:
    assert smollm2_tok.max_token_bytes == 81
    assert smollm2_tok.min_tokens(text) <= len(smollm2_tok.encode(text))
    assert smollm2_tok.min_tokens(text) >= math.ceil(len(text.encode()) / 81)


def test_smollm2_digits_count_one_token_each(smollm2_tok: Tokenizer) -> None:
    # its pre-tokeniser splits every digit: the issue's prompt has 490,125 tokens at least
    # (588,896 in fact)
    assert smollm2_tok.min_tokens(BIG) == sum(c.isdigit() for c in BIG) + math.ceil(
        (len(BIG) - sum(c.isdigit() for c in BIG)) / 81
    )
    assert smollm2_tok.min_tokens(BIG) <= len(smollm2_tok.encode(BIG))


@pytest.mark.parametrize("as_chat", [False, True])
def test_the_issue_prompt_is_refused_before_the_real_tokenizer_runs(
    smollm2_tok: Tokenizer, monkeypatch: pytest.MonkeyPatch, as_chat: bool
) -> None:
    calls: list[int] = []
    encode = smollm2_tok._encode_texts
    monkeypatch.setattr(
        smollm2_tok, "_encode_texts", lambda texts: calls.append(1) or encode(texts)
    )
    engine = LLMEngine(FakeRunner(max_model_len=2048), smollm2_tok, smollm2_tok.eos_token_ids)  # type: ignore[arg-type]
    prompt = [{"role": "user", "content": BIG}] if as_chat else BIG
    with pytest.raises(ContextLengthExceeded, match="2048 tokens; your prompt of") as info:
        engine.add_request("r", prompt, SamplingParams(max_tokens=1))
    assert info.value.param == "messages"
    assert calls == []
    engine.add_request("short", [{"role": "user", "content": "Hi"}], SamplingParams(max_tokens=1))
    assert calls  # a prompt that fits is tokenised as ever
