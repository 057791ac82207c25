"""A request's chat-template switches: `chat_template_kwargs` and `reasoning_effort`.

`chat_template_kwargs` (a JSON object of scalars, e.g. {"enable_thinking": false}) become
variables of the model's chat template, as transformers' `apply_chat_template(**kwargs)`
takes them. `reasoning_effort` is mapped onto the switch the template has: `reasoning_effort`
itself (gpt-oss), else Qwen3's and the R1 distills' `enable_thinking` or Granite's `thinking`
(off for "none", on otherwise). A key the template does not read, a value that is not a
scalar, or an effort the template has no switch for is refused (400, naming the field):
nothing is silently ignored.
"""

from __future__ import annotations

import json
from typing import Any

from worker.chat_template import RESERVED, ChatTemplate
from worker.errors import InvalidRequest
from worker.tool_prompt import TemplatedChat

KWARGS, EFFORT = "chat_template_kwargs", "reasoning_effort"
THINKING_SWITCHES = ("enable_thinking", "thinking")  # Qwen3 / R1 distills, Granite 3.x
MAX_KWARGS = 64
# What the template may not be handed by a request (the renderer's own inputs).
_NOT_SETTABLE = RESERVED | {"bos_token", "eos_token"}


def template_switches(options: Any, template: ChatTemplate | None) -> dict[str, Any]:
    """ChatOptions (its chat_template_kwargs JSON text and reasoning_effort) -> the template
    variables to render with; raises InvalidRequest naming the field."""
    raw, effort = options.chat_template_kwargs.strip(), options.reasoning_effort
    if not raw and not effort:
        return {}
    if template is None:
        raise InvalidRequest(
            f"This model has no chat template, so {KWARGS if raw else EFFORT} does not apply.",
            KWARGS if raw else EFFORT,
        )
    out = _effort(effort, template) if effort else {}
    out.update(_kwargs(raw, template) if raw else {})  # explicit variables win
    return out


def _kwargs(raw: str, template: ChatTemplate) -> dict[str, Any]:
    try:
        kwargs = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(f"{KWARGS} is not valid JSON: {exc}", KWARGS) from None
    if not isinstance(kwargs, dict):
        raise InvalidRequest(
            f'{KWARGS} must be a JSON object, e.g. {{"enable_thinking": false}}.', KWARGS
        )
    if len(kwargs) > MAX_KWARGS:
        raise InvalidRequest(f"{KWARGS} has {len(kwargs)} keys; at most {MAX_KWARGS}.", KWARGS)
    readable = sorted(template.variables() - _NOT_SETTABLE)
    for key, value in kwargs.items():
        if key in _NOT_SETTABLE:
            raise InvalidRequest(f"{KWARGS} may not set {key!r}: the server sets it.", KWARGS)
        if not template.accepts(key):
            raise InvalidRequest(
                f"{KWARGS}: this model's chat template does not read {key[:64]!r}; it reads "
                f"{', '.join(readable) or 'no other variable'}.",
                KWARGS,
            )
        if value is not None and not isinstance(value, str | int | float | bool):
            raise InvalidRequest(
                f"{KWARGS}[{key!r}] must be a string, number, boolean or null, "
                f"not {type(value).__name__}.",
                KWARGS,
            )
    return kwargs


def _effort(effort: str, template: ChatTemplate) -> dict[str, Any]:
    if template.accepts(EFFORT):
        return {EFFORT: effort}
    for switch in THINKING_SWITCHES:
        if template.accepts(switch):
            return {switch: effort != "none"}
    raise InvalidRequest(
        f"This model's chat template has no reasoning switch, so {EFFORT} does not apply; "
        "leave it out.",
        EFFORT,
    )


def with_switches(messages: Any, options: Any) -> Any:
    """The chat's messages carrying the request's ChatOptions (when it sets a switch), for the
    engine's renderer, which maps them with `template_switches` against its template."""
    if not options.chat_template_kwargs.strip() and not options.reasoning_effort:
        return messages
    chat = TemplatedChat(messages, **getattr(messages, "template_kwargs", {}))
    chat.switches = options
    return chat


def render_kwargs(messages: Any, template: ChatTemplate | None) -> dict[str, Any]:
    """All the template variables riding on `messages`: tools= and the mapped switches."""
    extra = dict(getattr(messages, "template_kwargs", {}))
    switches = getattr(messages, "switches", None)
    if switches is not None:
        extra.update(template_switches(switches, template))
    return extra
