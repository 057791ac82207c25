"""worker.chat_template: the jinja features transformers gives chat templates, checked against
transformers' own renderer on a template that uses each of them."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError, TemplateError

from worker.chat_template import ChatTemplate

render_jinja_template = pytest.importorskip(
    "transformers.utils.chat_template_utils"
).render_jinja_template

FEATURES = """{%- set ns = namespace(n=0) -%}
{%- for m in messages -%}
{%- if m.role == 'skip' %}{% continue %}{% endif -%}
{%- if loop.index > 4 %}{% break %}{% endif -%}
{% generation %}[{{ m.role }}]{% endgeneration %}{{ m.content }}
{%- if m.reasoning_content is defined %}<r>{{ m.reasoning_content }}</r>{% endif %}
{%- if m.thinking is defined %}<t>{{ m.thinking }}</t>{% endif %}
{%- if m.name is defined %}({{ m.name }}){% endif %}
{%- set ns.n = ns.n + 1 %}
{% endfor -%}
{{ ns.n }} {{ {'b': 'é<>', 'a': [1, 2]} | tojson(indent=1, sort_keys=true) }}
{{ dict(x=1) | tojson(separators=(',', ':')) }} {{ dict.fromkeys(['k']) | tojson }}
{%- if tools %} tools={{ tools | tojson }}{% endif %}
{%- if extra is defined %} extra={{ extra }}{% endif %} {{ bos_token }}|{{ eos_token }}
{%- if add_generation_prompt %}>>{% endif %}"""

MESSAGES = [
    {"role": "system", "content": "s", "name": None},
    {"role": "skip", "content": "hidden"},
    {"role": "user", "content": "u", "name": "ann"},
    {"role": "assistant", "content": "a", "reasoning": "because"},
    {"role": "user", "content": "u2"},
    {"role": "user", "content": "cut by break"},
]
SPECIALS = {"bos_token": "<s>", "eos_token": "</s>"}


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"extra": 3}, {"tools": [{"type": "function", "function": {"name": "f"}}]}],
)
@pytest.mark.parametrize("gen", [True, False])
def test_features_render_like_transformers(kwargs: dict, gen: bool) -> None:
    # apply_chat_template drops None-valued keys before render_jinja_template sees them
    dropped = [{k: v for k, v in m.items() if v is not None} for m in MESSAGES]
    expected, _ = render_jinja_template(
        [dropped], chat_template=FEATURES, add_generation_prompt=gen, **SPECIALS, **kwargs
    )
    got = ChatTemplate(FEATURES, SPECIALS).render(MESSAGES, gen, **kwargs)
    assert got == expected[0]
    assert "hidden" not in got and "cut by break" not in got and "(None)" not in got
    assert "<r>because</r><t>because</t>" in got  # reasoning aliased, None keys dropped


def test_kwargs_override_special_tokens_and_variables_are_known() -> None:
    template = ChatTemplate(FEATURES, SPECIALS)
    assert template.render([], bos_token="B").endswith(" B|</s>>>")
    assert {"extra", "messages", "tools"} <= template.variables()
    assert template.accepts("extra") and not template.accepts("enable_thinking")
    assert not template.accepts("raise_exception")  # a global, not a variable


def test_named_templates_pick_tool_use() -> None:
    template = ChatTemplate({"default": "plain", "tool_use": "with tools"}, {})
    assert template.render([]) == "plain"
    assert template.render([], tools=[{"name": "f"}]) == "with tools"


def test_raise_exception_and_sandbox() -> None:
    with pytest.raises(TemplateError, match="no!"):
        ChatTemplate("{{ raise_exception('no!') }}", {}).render([])
    with pytest.raises(SecurityError):
        ChatTemplate("{% set ns = namespace(_x=1) %}", {}).render([])
    with pytest.raises(SecurityError):
        ChatTemplate("{{ messages.__class__.__mro__ }}", {}).render([])
    assert ChatTemplate("{{ strftime_now('%Y') | length }}", {}).render([]) == "4"


def test_named_templates_round_trip_through_tokenizer_config(tmp_path) -> None:
    from worker.loader import load_tokenizer
    from worker.tokenizer import Tokenizer

    tok = load_tokenizer()
    tok.chat_template = {"default": "plain", "tool_use": "with tools"}
    tok.save_hf(tmp_path)
    again = Tokenizer.from_hf_dir(tmp_path)
    assert again.template is not None
    assert again.template.templates == {"default": "plain", "tool_use": "with tools"}
