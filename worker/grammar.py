"""Grammar-constrained decoding: compiled grammars (cached) and per-sequence matchers.

Library: xgrammar (vLLM's and SGLang's default). Measured against llguidance 1.9.1 on this
machine (2 CPU threads, SmolLM2's 49,152-token vocabulary, a 10-property JSON schema with a
nested object, an array, an enum, bounded numbers, a pattern and an anyOf; the 111 tokens of
a valid instance fed through 16 matchers):

    xgrammar 0.2.9:   tokenizer info 25 ms, schema compile 11 ms, json_object 5 ms;
                      mask fill for 16 rows: median 0.02 ms / step (p90 0.14 ms)
    llguidance 1.9.1: tokenizer 205 ms, schema compile + first mask 3 ms;
                      mask fill for 16 rows: median 0.16 ms / step (p90 0.52 ms)

Both are far below a decode step (~60 ms for 16 rows); xgrammar fills masks ~8x faster per
step, loads the tokenizer 8x faster, and is what the serving stacks we follow ship, so it is
the pick. Applying a mask to 16 rows of logits costs about 3 ms either way (see the sampler).

JSON is compiled with `any_whitespace=False`: separators are exactly ", " and ": " and there is
no other whitespace between JSON tokens, so a small model cannot pad an answer with newlines
past its token budget. For the same reason a number the schema leaves unbounded gets the
bounds of a double's exact integers, +-(2**53 - 1) (`bounded_numbers`): without them a small
model at temperature 0 can write `1111...` until max_tokens, and JSON numbers past those
bounds lose precision in most parsers anyway; the bounds also cap fraction digits.

Errors: an invalid schema, regex or grammar raises InvalidRequest naming `param` (the caller
says which request field carried it: "response_format", "tools", ...).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
import xgrammar as xg

from worker.errors import InvalidRequest

if TYPE_CHECKING:
    from mesh.pb import common_pb2
    from worker.tokenizer import Tokenizer

__all__ = [
    "CompiledGrammar",
    "GrammarCache",
    "Matcher",
    "allocate_bitmask",
    "apply_bitmask",
    "tokenizer_info",
]

CompiledGrammar = xg.CompiledGrammar
log = logging.getLogger(__name__)

# Compiled grammars kept (LRU); one is ~100 KB-1 MB for a 49k vocabulary.
DEFAULT_CACHE_ENTRIES = 128
# Constraint text accepted (a schema, regex or grammar): bounds compile time and memory.
MAX_CONSTRAINT_CHARS = 64 * 1024
# "[01:09:50] /project/cpp/regex_converter.cc:94: " before xgrammar's messages: noise to callers
_XGRAMMAR_LOCATION = re.compile(r"\[[0-9:]+\] \S+:[0-9]+: ")


def tokenizer_info(
    tokenizer: Tokenizer, vocab_size: int | None = None, stop_token_ids: Sequence[int] = ()
) -> xg.TokenizerInfo:
    """xgrammar's view of our tokenizer (worker.tokenizer wraps a `tokenizers.Tokenizer`).

    vocab_size: the model's logits width, which may exceed the tokenizer's (padded rows of
    the embedding): ids past the tokenizer's are never allowed by a mask."""
    tok = tokenizer.tok
    vocab = tok.get_vocab(with_added_tokens=True)
    size = max(vocab_size or 0, max(vocab.values()) + 1)
    encoded = [""] * size
    for token, token_id in vocab.items():
        encoded[token_id] = token
    # vocabulary type (byte-level BPE, byte fallback, raw) and prefix space, from the
    # tokenizer's own serialisation, as xgrammar's from_huggingface does
    meta = xg.TokenizerInfo._detect_metadata_from_hf(tok.to_str())
    stops = list(stop_token_ids or tokenizer.eos_token_ids)
    return xg.TokenizerInfo(
        encoded,
        meta["vocab_type"],
        vocab_size=size,
        stop_token_ids=stops or None,
        add_prefix_space=meta["add_prefix_space"],
    )


class GrammarCache:
    """Compiles constraints to token-level grammars, keeping the last `max_entries` (LRU).

    Thread-safe: the worker compiles off its event loop; two threads asking for the same new
    grammar at once may both compile it (the result is the same)."""

    def __init__(
        self, info: xg.TokenizerInfo, max_entries: int = DEFAULT_CACHE_ENTRIES, max_threads: int = 2
    ) -> None:
        self.info = info
        self.vocab_size = info.vocab_size
        self.max_entries = max_entries
        self._compiler = xg.GrammarCompiler(info, max_threads=max_threads, cache_enabled=False)
        self._cache: OrderedDict[tuple[str, str], CompiledGrammar] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def for_tokenizer(
        cls, tokenizer: Tokenizer, vocab_size: int | None = None, **kwargs: Any
    ) -> GrammarCache:
        return cls(tokenizer_info(tokenizer, vocab_size), **kwargs)

    def __len__(self) -> int:
        return len(self._cache)

    # -- the kinds of constraint --------------------------------------------------------

    def json_schema(
        self, text: str, *, strict: bool = True, param: str = "response_format"
    ) -> CompiledGrammar:
        """A JSON schema (JSON text). strict: properties and items not in the schema are
        refused unless the schema allows them (OpenAI's `strict: true`)."""
        _check_size(text, param)
        try:
            schema = json.loads(text)
        except ValueError as exc:
            raise InvalidRequest(f"The JSON schema is not valid JSON: {exc}", param=param) from exc
        if not isinstance(schema, dict):
            raise InvalidRequest("The JSON schema must be a JSON object.", param=param)
        # not sort_keys: the order of `properties` is the order the output must follow
        canonical = json.dumps(bounded_numbers(schema), separators=(",", ":"))
        return self._get(
            ("json_schema" if strict else "json_schema_loose", canonical),
            lambda: self._compiler.compile_json_schema(
                canonical, any_whitespace=False, strict_mode=strict
            ),
            param,
            "JSON schema",
        )

    def json_object(self, *, param: str = "response_format") -> CompiledGrammar:
        """Any JSON object (OpenAI's `json_object`), whitespace bounded like json_schema."""
        return self._get(
            ("json_object", ""),
            lambda: self._compiler.compile_json_schema(
                '{"type": "object"}', any_whitespace=False, strict_mode=False
            ),
            param,
            "JSON object grammar",
        )

    def regex(self, text: str, *, param: str = "response_format") -> CompiledGrammar:
        _check_size(text, param)
        return self._get(
            ("regex", text), lambda: self._compiler.compile_regex(text), param, "regex"
        )

    def ebnf(self, text: str, *, param: str = "response_format") -> CompiledGrammar:
        """An EBNF grammar in xgrammar's (GBNF-compatible) dialect, start rule `root`."""
        _check_size(text, param)
        return self._get(
            ("ebnf", text), lambda: self._compiler.compile_grammar(text), param, "grammar"
        )

    def structural_tag(
        self,
        tags: Sequence[xg.StructuralTagItem | Mapping[str, Any]],
        triggers: Sequence[str],
        *,
        param: str = "tools",
    ) -> CompiledGrammar:
        """Free text, except that after a trigger (e.g. "<tool_call>") the output must be one
        of `tags` (begin, JSON schema, end) whose begin starts with that trigger. A tag is an
        xgrammar StructuralTagItem or a mapping {"begin", "schema" (dict or JSON text), "end"}.
        """
        items = [_tag_dict(tag) for tag in tags]
        key = json.dumps([items, list(triggers)], sort_keys=True)
        _check_size(key, param)

        def compile_tag() -> CompiledGrammar:
            tag_items = [
                xg.StructuralTagItem(begin=t["begin"], schema=t["schema"], end=t["end"])
                for t in items
            ]
            return self._compiler.compile_structural_tag(tag_items, list(triggers))

        return self._get(("structural_tag", key), compile_tag, param, "structural tag")

    def structural(self, tag: Mapping[str, Any], *, param: str = "tools") -> CompiledGrammar:
        """An xgrammar structural tag in its JSON form ({"type": "structural_tag", "format":
        ...}: tags, triggered tags, tags with a separator, alternatives); worker.tool_choice
        builds the tool-call ones. Its size is bounded by the request's (tools, schemas)."""
        key = json.dumps(tag, sort_keys=True)
        return self._get(
            ("structural", key),
            lambda: self._compiler.compile_structural_tag(key),
            param,
            "tool-call grammar",
        )

    def from_pb(
        self, constraint: common_pb2.OutputConstraint, *, param: str = "response_format"
    ) -> CompiledGrammar | None:
        """The wire's OutputConstraint -> its grammar (None when no kind is set)."""
        kind = constraint.WhichOneof("kind")
        if kind is None:
            return None
        if kind == "json_object":
            if not constraint.json_object:
                return None
            return self.json_object(param=param)
        if kind == "json_schema":
            return self.json_schema(constraint.json_schema, param=param)
        if kind == "regex":
            return self.regex(constraint.regex, param=param)
        return self.ebnf(constraint.grammar, param=param)

    # -- the cache ----------------------------------------------------------------------

    def _get(
        self, key: tuple[str, str], compile_it: Callable[[], CompiledGrammar], param: str, what: str
    ) -> CompiledGrammar:
        with self._lock:
            if (hit := self._cache.get(key)) is not None:
                self._cache.move_to_end(key)
                return hit
        try:
            compiled = compile_it()
        except Exception as exc:  # xgrammar raises RuntimeError / ValueError subclasses
            reason = _XGRAMMAR_LOCATION.sub("", str(exc)).strip()
            raise InvalidRequest(f"The {what} cannot be compiled: {reason}", param=param) from exc
        with self._lock:
            self._cache[key] = compiled
            self._cache.move_to_end(key)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return compiled


class Matcher:
    """One sequence's position in its grammar. The engine advances it with every token the
    sequence accepts; before each sampling step it fills the sequence's row of the batch's
    bitmask. The tokenizer's stop tokens (EOS) are allowed only where the grammar may end."""

    __slots__ = ("_matcher",)

    def __init__(self, compiled: CompiledGrammar) -> None:
        self._matcher = xg.GrammarMatcher(compiled)

    def fill_bitmask(self, bitmask: torch.Tensor, row: int) -> None:
        self._matcher.fill_next_token_bitmask(bitmask, row)

    def accept(self, token_id: int) -> bool:
        """Advances by one token -> False (state unchanged) when the grammar refuses it."""
        return bool(self._matcher.accept_token(token_id))

    def done_after(self, token_id: int) -> bool:
        """The engine's step: advances by the token the sequence accepted -> True when the
        answer must end: the grammar accepted EOS where it may end (terminated), or refused
        the token (the mask allows only accepted tokens: only when every token was masked;
        ending beats emitting text the grammar refuses). A stop string or max_tokens ends a
        sequence before this is asked, so a matcher never needs rolling back."""
        if not self.accept(token_id):
            log.warning("the grammar refused token %d: the answer ends", token_id)
            return True
        return self.is_terminated

    def rollback(self, num_tokens: int = 1) -> None:
        self._matcher.rollback(num_tokens)

    def fork(self) -> Matcher:
        """An independent copy at the same position (n > 1 choices of one prompt)."""
        forked = Matcher.__new__(Matcher)
        forked._matcher = self._matcher.fork()
        return forked

    @property
    def is_terminated(self) -> bool:
        """A stop token was accepted: the output is complete and nothing may follow."""
        return bool(self._matcher.is_terminated())

    @property
    def is_completed(self) -> bool:
        """What was accepted so far is a complete match (EOS would be allowed now)."""
        return bool(self._matcher.is_completed())


MAX_EXACT_INT = 2**53 - 1
_VALUES = frozenset({"const", "enum", "default", "examples"})  # JSON values, not schemas
# Keys whose value maps names to schemas: a property may be called "default" or "enum".
_NAMED_SCHEMAS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)


def bounded_numbers(schema: Any) -> Any:
    """The schema with every integer or number that lacks a bound given +-MAX_EXACT_INT
    (a copy; explicit bounds, exclusive ones included, are kept)."""
    if isinstance(schema, list):
        return [bounded_numbers(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            out[key] = {name: bounded_numbers(sub) for name, sub in value.items()}
        else:
            out[key] = value if key in _VALUES else bounded_numbers(value)
    kinds = out.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if "integer" in kinds or "number" in kinds:
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["maximum"] = MAX_EXACT_INT
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["minimum"] = -MAX_EXACT_INT
    return out


def allocate_bitmask(batch_size: int, vocab_size: int) -> torch.Tensor:
    """An int32 [batch_size, ceil(vocab_size / 32)] bitmask on the CPU, all tokens allowed."""
    return xg.allocate_token_bitmask(batch_size, vocab_size)


def apply_bitmask(
    logits: torch.Tensor, bitmask: torch.Tensor, rows: Sequence[int] | None = None
) -> None:
    """Sets to -inf, in place, the logits of tokens the bitmask refuses; `rows` (None: all)
    selects the rows of both (bitmask row i masks logits row i)."""
    xg.apply_token_bitmask_inplace(
        logits, bitmask.to(logits.device), indices=list(rows) if rows is not None else None
    )


def _check_size(text: str, param: str) -> None:
    if len(text) > MAX_CONSTRAINT_CHARS:
        raise InvalidRequest(
            f"The constraint is {len(text)} characters; at most {MAX_CONSTRAINT_CHARS}.",
            param=param,
        )


def _tag_dict(tag: xg.StructuralTagItem | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(tag, Mapping):
        begin, schema, end = tag["begin"], tag["schema"], tag["end"]
    else:
        begin, schema, end = tag.begin, tag.schema_, tag.end
    if isinstance(schema, str):
        schema = json.loads(schema)
    return {"begin": begin, "schema": schema, "end": end}
