"""A model's chat template, rendered as transformers' `apply_chat_template` renders it.

Same jinja2 environment (sandboxed, trim_blocks + lstrip_blocks, loop controls, the
`{% generation %}` block, `raise_exception`, `strftime_now`, `tojson` with its options, `dict`,
a `namespace` that refuses private names), same inputs (messages with None-valued keys
dropped and reasoning aliased to `reasoning_content`/`thinking`, the special tokens, `tools`
and `documents`, extra template variables). tests/worker/templates/ checks the output against
transformers on the published templates of the catalog's families.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
import jinja2.meta
import jinja2.nodes
import jinja2.utils
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Names a message's reasoning arrives under; templates read `reasoning_content` (most) or
# `thinking` (gpt-oss), so both are filled, as transformers does.
REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")
# Variables the renderer sets itself: a request's template kwargs may not replace them.
RESERVED = frozenset({"messages", "add_generation_prompt", "tools", "documents"})


class _Generation(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}` (assistant-mask markup): renders its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

    def _body(self, caller: Any) -> str:
        return caller()


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(
    x: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Not jinja's own tojson: that one escapes HTML characters, which no model was trained on.
    return json.dumps(
        x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


class _TemplateDict:
    """`dict(...)` and `dict.fromkeys(...)` without handing the template the dict type."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


class _Namespace(jinja2.utils.Namespace):
    """jinja's namespace, refusing underscore names (no reach into CPython internals)."""

    def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: N805 - jinja's signature trick
        self, args = args[0], args[1:]
        attrs = dict(*args, **kwargs)
        for name in attrs:
            _Namespace._check_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _Namespace._check_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)

    @staticmethod
    def _check_name(name: Any) -> None:
        if isinstance(name, str) and name.startswith("_"):
            raise SecurityError(f"chat templates cannot store private attributes ({name!r})")


@lru_cache(maxsize=1)
def environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_Generation, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals.update(
        raise_exception=_raise_exception,
        strftime_now=_strftime_now,
        dict=_TemplateDict(),
        namespace=_Namespace,
    )
    return env


class ChatTemplate:
    """One model's template(s): a string, or named ones ({"default": ..., "tool_use": ...} as
    tokenizer_config.json may hold them; `tool_use` renders requests with tools)."""

    def __init__(self, source: str | Mapping[str, str], special_tokens: Mapping[str, str]) -> None:
        self.templates = {"default": source} if isinstance(source, str) else dict(source)
        if "default" not in self.templates:
            raise ValueError(f"no default chat template among {sorted(self.templates)}")
        self.special_tokens = {k: v for k, v in special_tokens.items() if v is not None}
        env = environment()
        self._compiled = {name: env.from_string(text) for name, text in self.templates.items()}
        self._variables = {
            name: frozenset(jinja2.meta.find_undeclared_variables(env.parse(text)))
            - set(env.globals)
            for name, text in self.templates.items()
        }

    @staticmethod
    def from_config(value: Any) -> str | dict[str, str] | None:
        """tokenizer_config.json's chat_template: a string, or [{"name", "template"}, ...]."""
        if isinstance(value, list):
            return {t["name"]: t["template"] for t in value}
        return value

    def to_config(self) -> str | list[dict[str, str]]:
        """The form tokenizer_config.json holds (from_config's inverse)."""
        if len(self.templates) == 1:
            return self.source
        return [{"name": k, "template": v} for k, v in self.templates.items()]

    @property
    def source(self) -> str:
        """The default template's text."""
        return self.templates["default"]

    def variables(self, tools: bool = False) -> frozenset[str]:
        """The variables the template reads (other than the renderer's own globals)."""
        return self._variables[self._name(tools)]

    def accepts(self, name: str) -> bool:
        """True when some template reads variable `name` (e.g. `enable_thinking`)."""
        return any(name in names for names in self._variables.values())

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = True,
        **kwargs: Any,
    ) -> str:
        """transformers' render: kwargs (e.g. enable_thinking, tools) after the special tokens,
        so they win, as in `apply_chat_template(..., **kwargs)`."""
        tools = kwargs.pop("tools", None)
        documents = kwargs.pop("documents", None)
        template = self._compiled[self._name(bool(tools))]
        return template.render(
            messages=normalize_messages(messages),
            tools=plain(tools),
            documents=plain(documents),
            add_generation_prompt=add_generation_prompt,
            **plain({**self.special_tokens, **kwargs}),
        )

    def _name(self, tools: bool) -> str:
        return "tool_use" if tools and "tool_use" in self._compiled else "default"


def normalize_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Keys whose value is None dropped (templates test for a missing key, not for None);
    reasoning under any of its names also under `reasoning_content` and `thinking`."""
    out = []
    for message in messages:
        msg = {k: plain(v) for k, v in message.items() if v is not None}
        reasoning = next((msg[k] for k in REASONING_FIELDS if msg.get(k) is not None), None)
        if reasoning is not None:
            msg = {"thinking": reasoning, **msg, "reasoning_content": reasoning}
        out.append(msg)
    return out


def plain(value: Any) -> Any:
    """JSON-typed copy of `value`: the sandbox sees no object with methods of its own."""
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value] if isinstance(value, list) else tuple(map(plain, value))
    raise TypeError(f"chat template data must be JSON values, got {type(value).__name__}")
