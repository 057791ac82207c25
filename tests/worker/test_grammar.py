"""worker.grammar over SmolLM2's real tokenizer: compiled grammars, matchers, masks, errors."""

from __future__ import annotations

import json

import pytest
import torch

from mesh.pb import common_pb2
from worker.errors import InvalidRequest
from worker.grammar import GrammarCache, Matcher, allocate_bitmask, apply_bitmask
from worker.loader import LoadedModel

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer", "minimum": 0},
        "role": {"enum": ["admin", "user"]},
    },
    "required": ["name", "age", "role"],
}


@pytest.fixture(scope="module")
def cache(smollm2: LoadedModel) -> GrammarCache:
    # a logits width past the tokenizer's vocabulary (padded embeddings) must be masked
    return GrammarCache.for_tokenizer(smollm2.tokenizer, smollm2.tokenizer.vocab_size + 64)


def feed(lm: LoadedModel, matcher: Matcher, text: str) -> bool:
    return all(matcher.accept(t) for t in lm.tokenizer.encode(text))


def test_json_schema_accepts_valid_refuses_invalid(smollm2: LoadedModel, cache: GrammarCache):
    grammar = cache.json_schema(json.dumps(SCHEMA))
    good = Matcher(grammar)
    assert feed(smollm2, good, '{"name": "Ada", "age": 36, "role": "admin"}')
    assert good.is_completed
    assert not feed(smollm2, Matcher(grammar), '{"name": "Ada", "age": -1')
    assert not feed(smollm2, Matcher(grammar), '{"name": "Ada", "age": 3, "role": "boss"}')
    # strict: a property the schema does not list is refused; strict=False lets it through
    extra = '{"name": "A", "age": 1, "role": "user", "x": 1}'
    assert not feed(smollm2, Matcher(grammar), extra)
    assert feed(smollm2, Matcher(cache.json_schema(json.dumps(SCHEMA), strict=False)), extra)


def test_json_whitespace_is_bounded(smollm2: LoadedModel, cache: GrammarCache):
    """No newline or run of spaces between JSON tokens: a small model cannot pad."""
    grammar = cache.json_object()
    assert feed(smollm2, Matcher(grammar), '{"a": [1, 2, {"b": null}]}')
    assert not feed(smollm2, Matcher(grammar), '{\n  "a": 1}')
    assert not feed(smollm2, Matcher(grammar), '{"a":  1}')


def test_eos_only_where_the_grammar_may_end(smollm2: LoadedModel, cache: GrammarCache):
    eos = smollm2.eos_token_ids[0]
    matcher = Matcher(cache.regex("ab"))
    bitmask = allocate_bitmask(2, cache.vocab_size)
    logits = torch.zeros(2, cache.vocab_size)
    matcher.fill_bitmask(bitmask, 1)
    apply_bitmask(logits, bitmask, [1])
    assert logits[1, eos] == float("-inf")  # nothing matched yet: no EOS
    assert torch.isfinite(logits[0]).all()  # a row not listed is untouched
    assert feed(smollm2, matcher, "ab")
    matcher.fill_bitmask(bitmask, 1)
    logits.zero_()
    apply_bitmask(logits, bitmask, [1])
    assert (logits[1] > float("-inf")).nonzero().flatten().tolist() == [eos]
    assert matcher.accept(eos) and matcher.is_terminated
    assert not matcher.accept(eos)


def test_padded_vocabulary_ids_are_never_allowed(cache: GrammarCache, smollm2: LoadedModel):
    bitmask = allocate_bitmask(1, cache.vocab_size)
    Matcher(cache.json_object()).fill_bitmask(bitmask, 0)
    logits = torch.zeros(1, cache.vocab_size)
    apply_bitmask(logits, bitmask)
    assert (logits[0, smollm2.tokenizer.vocab_size :] == float("-inf")).all()


def test_ebnf_regex_structural_tag_and_fork(smollm2: LoadedModel, cache: GrammarCache):
    assert feed(smollm2, Matcher(cache.ebnf('root ::= "yes" | "no"')), "no")
    assert not feed(smollm2, Matcher(cache.regex(r"[a-c]+[0-9]")), "abd")
    tag = {
        "begin": "<tool_call>",
        "schema": {"type": "object", "properties": {"name": {"const": "f"}}, "required": ["name"]},
        "end": "</tool_call>",
    }
    grammar = cache.structural_tag([tag], ["<tool_call>"])
    assert feed(smollm2, Matcher(grammar), 'Sure. <tool_call>{"name": "f"}</tool_call>')
    assert not feed(smollm2, Matcher(grammar), 'Sure. <tool_call>{"name": "g"}</tool_call>')
    base = Matcher(cache.regex("(ab|ac)"))
    assert feed(smollm2, base, "a")
    fork = base.fork()
    assert feed(smollm2, fork, "b") and feed(smollm2, base, "c")


def test_cache_hits_and_bound(smollm2: LoadedModel):
    cache = GrammarCache.for_tokenizer(smollm2.tokenizer, max_entries=2)
    first = cache.regex("a+")
    assert cache.regex("a+") is first
    # the same schema with other spacing is the same entry
    assert cache.json_schema('{"type": "object"}') is cache.json_schema('{"type":"object"}')
    cache.regex("b+")
    assert len(cache) == 2
    assert cache.regex("a+") is not first  # evicted (LRU), compiled again


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.json_schema("{"), "not valid JSON"),
        (lambda c: c.json_schema("[1]"), "must be a JSON object"),
        (lambda c: c.json_schema('{"type": "nope"}'), "nope"),
        (lambda c: c.regex("[a-"), "regex"),
        (lambda c: c.ebnf("root ::= "), "grammar"),
        (lambda c: c.regex("a" * 70_000), "at most"),
    ],
)
def test_invalid_constraints_name_the_param(cache: GrammarCache, call, message):
    with pytest.raises(InvalidRequest, match=message) as info:
        call(cache)
    assert info.value.param == "response_format"
    with pytest.raises(InvalidRequest) as info:
        cache.ebnf("root ::= ", param="tools")
    assert info.value.param == "tools"


def test_from_pb(smollm2: LoadedModel, cache: GrammarCache):
    assert cache.from_pb(common_pb2.OutputConstraint()) is None
    assert cache.from_pb(common_pb2.OutputConstraint(json_object=True)) is cache.json_object()
    by_schema = cache.from_pb(common_pb2.OutputConstraint(json_schema=json.dumps(SCHEMA)))
    assert by_schema is cache.json_schema(json.dumps(SCHEMA))
    assert feed(smollm2, Matcher(cache.from_pb(common_pb2.OutputConstraint(regex="x+"))), "xx")
    grammar = cache.from_pb(common_pb2.OutputConstraint(grammar='root ::= "ok"'))
    assert feed(smollm2, Matcher(grammar), "ok")


# -- in the engine -----------------------------------------------------------------------

BOUNDED = {
    "type": "object",
    "properties": {
        "color": {"enum": ["red", "green", "blue"]},
        "count": {"type": "integer", "minimum": 0, "maximum": 99},
    },
    "required": ["color", "count"],
}


def test_engine_constrained_rows_finish_valid_and_free_rows_are_untouched(
    smollm2: LoadedModel, make_runner
) -> None:
    from worker.engine import LLMEngine
    from worker.sampling_params import SamplingParams
    from worker.sequence import FinishReason

    engine = LLMEngine(make_runner(smollm2), smollm2.tokenizer, smollm2.eos_token_ids, seed=0)
    prompt = "Pick a color and a count, as JSON: "
    free = SamplingParams(max_tokens=12, ignore_eos=True)

    texts: dict[tuple[str, int], str] = {}
    finishes: dict[tuple[str, int], object] = {}

    def run(requests: dict[str, SamplingParams]) -> dict[str, list[int]]:
        seqs = {rid: engine.add_request(rid, prompt, p) for rid, p in requests.items()}
        while engine.has_unfinished():
            for out in engine.step():
                key = (out.request_id, out.index)
                texts[key] = texts.get(key, "") + out.text
                finishes[key] = out.finish_reason
        return {rid: seq.output_ids for rid, seq in seqs.items()}

    alone = run({"free": free})["free"]
    grammar = engine.grammars.json_schema(json.dumps(BOUNDED))
    # ignore_eos does not keep a constrained answer going past its grammar's end
    constrained = SamplingParams(max_tokens=40, grammar=grammar, ignore_eos=True)
    sampled = SamplingParams(max_tokens=40, grammar=grammar, temperature=1.0, seed=5, n=2)
    together = run({"free": free, "json": constrained, "json-t1": sampled})
    assert together["free"] == alone  # a plain row in a constrained batch: unchanged
    for key in (("json", 0), ("json-t1", 0), ("json-t1", 1)):
        answer = json.loads(texts[key])
        assert answer["color"] in BOUNDED["properties"]["color"]["enum"]
        assert 0 <= answer["count"] <= 99
        assert finishes[key] is FinishReason.STOP


def test_unbounded_numbers_get_a_doubles_exact_integer_bounds() -> None:
    from worker.grammar import MAX_EXACT_INT, bounded_numbers  # noqa: PLC0415

    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer"},
            "x": {"type": ["number", "null"], "exclusiveMinimum": 0},
            "kept": {"type": "integer", "minimum": 1, "maximum": 5},
            "type": {"const": {"type": "integer"}},
            "default": {"type": "integer"},  # a property's name, not the keyword
        },
        "items": [{"type": "number"}],
        "$defs": {"enum": {"type": "number"}},
    }
    out = bounded_numbers(schema)
    props = out["properties"]
    assert props["n"] == {"type": "integer", "minimum": -MAX_EXACT_INT, "maximum": MAX_EXACT_INT}
    assert props["x"]["maximum"] == MAX_EXACT_INT and "minimum" not in props["x"]
    assert props["kept"] == schema["properties"]["kept"]
    assert props["type"] == {"const": {"type": "integer"}}  # a value, not a schema
    assert out["items"][0]["minimum"] == -MAX_EXACT_INT
    assert props["default"]["maximum"] == out["$defs"]["enum"]["maximum"] == MAX_EXACT_INT
    assert schema["properties"]["n"] == {"type": "integer"}  # the caller's copy is untouched


def test_a_compiled_integer_stops_after_a_doubles_digits() -> None:
    import xgrammar as xg  # noqa: PLC0415

    from worker.grammar import bounded_numbers  # noqa: PLC0415

    grammar = xg.Grammar.from_json_schema(
        json.dumps(bounded_numbers({"type": "integer"})), any_whitespace=False
    )
    accepts = xg.testing._is_grammar_accept_string
    assert accepts(grammar, "9007199254740991") and accepts(grammar, "-42")
    assert not accepts(grammar, "1" * 17)
