"""LLMEngine over the real SmolLM2 (fp32, loaded once per session by conftest)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from worker.engine import LLMEngine
from worker.loader import LoadedModel
from worker.model_runner import ModelRunner
from worker.sampling_params import SamplingParams

pytestmark = pytest.mark.slow

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, in a small village,",
    "The three primary colors are",
]


@pytest.fixture
def engine(smollm2: LoadedModel, make_runner: Callable[..., ModelRunner]) -> LLMEngine:
    runner = make_runner(smollm2, max_num_seqs=4, max_model_len=256)
    return LLMEngine(
        runner, smollm2.tokenizer, smollm2.eos_token_ids, max_prefill_tokens=64, seed=0
    )


def generate(
    engine: LLMEngine, requests: dict[str, tuple[str, SamplingParams]]
) -> dict[str, list[int]]:
    """Runs the requests together; returns each one's generated token ids."""
    seqs = {
        rid: engine.add_request(rid, prompt, params) for rid, (prompt, params) in requests.items()
    }
    while engine.has_unfinished():
        engine.step()
    return {rid: seq.output_ids for rid, seq in seqs.items()}


def test_seeded_sampling_is_reproducible(engine: LLMEngine) -> None:
    params = SamplingParams(temperature=0.9, top_p=0.95, seed=1234, max_tokens=12, ignore_eos=True)
    first = generate(engine, {"a": (PROMPTS[2], params)})["a"]
    second = generate(engine, {"b": (PROMPTS[2], params)})["b"]
    other = generate(
        engine, {"c": (PROMPTS[2], SamplingParams(**{**_fields(params), "seed": 99}))}
    )["c"]
    assert first == second
    assert first != other


def test_concurrent_seeded_requests_do_not_interfere(engine: LLMEngine) -> None:
    a = SamplingParams(temperature=1.0, seed=1, max_tokens=12, ignore_eos=True)
    b = SamplingParams(temperature=1.0, seed=2, max_tokens=12, ignore_eos=True)
    alone_a = generate(engine, {"a": (PROMPTS[0], a)})["a"]
    alone_b = generate(engine, {"b": (PROMPTS[1], b)})["b"]
    together = generate(
        engine,
        {
            "a2": (PROMPTS[0], a),
            "b2": (PROMPTS[1], b),
            "x": (PROMPTS[3], SamplingParams(temperature=1.0, max_tokens=12)),
        },
    )
    assert together["a2"] == alone_a
    assert together["b2"] == alone_b


def test_greedy_batched_equals_each_alone(engine: LLMEngine) -> None:
    params = SamplingParams(max_tokens=12, ignore_eos=True)
    batched = generate(engine, {f"p{i}": (p, params) for i, p in enumerate(PROMPTS)})
    for i, prompt in enumerate(PROMPTS):
        assert generate(engine, {f"alone{i}": (prompt, params)})[f"alone{i}"] == batched[f"p{i}"]


def test_chat_answer_and_usage(engine: LLMEngine, smollm2: LoadedModel) -> None:
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    seq = engine.add_request("chat", messages, SamplingParams(max_tokens=20))
    outputs = []
    while engine.has_unfinished():
        outputs += engine.step()
    text = "".join(o.text for o in outputs)
    prompt_ids, num_system = smollm2.tokenizer.render_chat(messages)
    assert "Paris" in text
    usage = outputs[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.system_tokens) == (len(prompt_ids), num_system)
    assert usage.completion_tokens == sum(o.num_tokens for o in outputs) == seq.num_output_tokens


def test_stop_string_on_real_text(engine: LLMEngine) -> None:
    seq = engine.add_request("s", "1, 2, 3, 4, 5, 6,", SamplingParams(max_tokens=30, stop=[" 9"]))
    outputs = []
    while engine.has_unfinished():
        outputs += engine.step()
    text = "".join(o.text for o in outputs)
    assert " 9" not in text and text.startswith(" 7, 8,")
    assert outputs[-1].finish_reason is not None and outputs[-1].finish_reason.value == "stop"
    assert seq.num_output_tokens < 30


def _fields(params: SamplingParams) -> dict[str, object]:
    return {name: getattr(params, name) for name in params.__slots__}


def test_chunked_and_batched_prefill_equals_each_alone(engine: LLMEngine) -> None:
    # max_prefill_tokens=64: the long prompt is prefilled in chunks (start > 0) while the short
    # ones join it, padded, in the same forward; each continuation matches the prompt alone.
    params = SamplingParams(max_tokens=8, ignore_eos=True)
    long_prompt = " ".join(PROMPTS * 6)
    requests = {
        "long": (long_prompt, params),
        **{f"p{i}": (p, params) for i, p in enumerate(PROMPTS[:3])},
    }
    together = generate(engine, requests)
    for rid, (prompt, _) in requests.items():
        assert generate(engine, {f"{rid}-alone": (prompt, params)})[f"{rid}-alone"] == together[rid]


def test_a_prefix_copied_from_a_running_sequence_gives_the_same_answer(
    engine: LLMEngine, smollm2: LoadedModel, make_runner: Callable[..., ModelRunner]
) -> None:
    shared = "You are a terse assistant. " + " ".join(PROMPTS)  # like a long system prompt
    params = SamplingParams(max_tokens=8, ignore_eos=True)
    first = engine.add_request("first", shared + " Say one word.", SamplingParams(max_tokens=60))
    while first.is_prefilling:
        engine.step()  # first's prompt is computed; it goes on decoding in its slot
    second = engine.add_request("second", shared + " Name a colour.", params)
    while engine.has_unfinished():
        engine.step()
    assert second.num_cached > 10  # the shared prefix came from first's slot
    fresh = LLMEngine(
        make_runner(smollm2, max_num_seqs=4, max_model_len=256),
        smollm2.tokenizer,
        smollm2.eos_token_ids,
        max_prefill_tokens=64,
        enable_prefix_reuse=False,
    )
    assert generate(fresh, {"alone": (shared + " Name a colour.", params)})["alone"] == (
        second.output_ids
    )
