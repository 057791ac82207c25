"""Tool definitions and tool results: screened as content, not as structure.

A request that offers tools carries their definitions (name, description, parameters schema)
and, on later turns, what the tools returned (`tool` messages). Both reach the filter as typed
fields (``CheckRequest.tool_definitions`` / ``tool_results``), apart from the prompt:

- tool results are untrusted third-party content (a web page, an e-mail, an API answer): the
  pattern layer and the decoded-payload check screen each one as they screen prompts, so an
  injection planted in a search result is still caught, and without the quote policy (a
  result cannot ask "what does X mean" on the user's behalf);
- tool results are also checked for text addressed to the model reading them ("AI assistant
  reading this page: ...", ``addressed.py``), the mark of an indirect injection, and for the
  orders the prompt rules look for (``orders.py``: a text to assemble, join or decode and
  obey, a dump of the hidden context, a fake dialogue of compliant answers); tool definitions
  are not (they are the operator's, and may rightly address the model);
- tool definitions are otherwise screened the same way;
- the structure layer's JSON rules (role / system / instructions keys) do not apply to either:
  a JSON result with `role` or `system` keys, or a schema with a `prompt` property, is ordinary
  tool traffic. Deceptive Unicode is still checked, as in prompts;
- the learned layer reads what a JSON field *says*: its string values, one per line, not its
  keys and punctuation (n-grams of `{"author": "root", "message": ...}` are the shape of JSON
  injections too, and flagged an ordinary commit record).

Each reason's detail says where it was found. One reason per rule is kept across all the
fields, so many results with the same weak hint do not add up to a block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from .addressed import check_addressed
from .decode import check_decoded
from .exfil import check_exfil
from .json_view import json_strings
from .learned import check_learned
from .normalize import fold_text, normalize
from .orders import check_orders
from .patterns import check_patterns
from .structure import check_unicode
from .verdict import Reason


@dataclass(frozen=True, slots=True)
class ToolFields:
    """The tool parts of one request (picklable: it travels to the offload pool)."""

    definitions: tuple[str, ...] = ()
    results: tuple[str, ...] = ()

    @classmethod
    def of(cls, definitions: Sequence[str] = (), results: Sequence[str] = ()) -> ToolFields:
        return cls(tuple(definitions), tuple(results))

    def __bool__(self) -> bool:
        return bool(self.definitions or self.results)

    @property
    def num_chars(self) -> int:
        return sum(map(len, self.definitions)) + sum(map(len, self.results))

    def texts(self) -> list[tuple[str, str]]:
        """(where, text) for every field."""
        return [("tool definition", t) for t in self.definitions] + [
            ("tool result", t) for t in self.results
        ]


@dataclass(frozen=True, slots=True)
class ToolReasons:
    structure: list[Reason]
    patterns: list[Reason]
    decoded: list[Reason]
    learned: list[Reason]


def check_tool_fields(fields: ToolFields, learned: bool = False) -> ToolReasons:
    """Each field screened as content; with ``learned``, by the learned layer too (no
    quote policy: a tool result cannot ask a question on the user's behalf)."""
    structure: dict[str, Reason] = {}
    patterns: dict[str, Reason] = {}
    decoded: dict[str, Reason] = {}
    by_model: dict[str, Reason] = {}
    for where, text in fields.texts():
        if not text.isascii():
            _keep(structure, check_unicode(text), where)
        _keep(structure, check_exfil(text), where)
        norm = normalize(text)
        if where == "tool result":  # a definition is the operator's: it may address the model
            _keep(structure, check_addressed(text, norm.folded, quote_policy=False), where)
        _keep(patterns, check_patterns(norm, quote_policy=False), where)
        if where == "tool result":  # orders hidden in fetched content, as in prompts
            _keep(patterns, check_orders(text, quote_policy=False), where)
        _keep(decoded, check_decoded(text, learned=False), where)
        if learned:
            _keep(by_model, check_learned(fold_text(json_strings(text))), where)
    return ToolReasons(*(list(d.values()) for d in (structure, patterns, decoded, by_model)))


def _keep(best: dict[str, Reason], reasons: list[Reason], where: str) -> None:
    for r in reasons:
        if r.rule not in best or r.score > best[r.rule].score:
            detail = f"{r.detail}; in a {where}" if r.detail else f"in a {where}"
            best[r.rule] = replace(r, detail=detail)
