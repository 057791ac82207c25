"""The catalog families' published chat templates render exactly as transformers renders them.

The templates are llama.cpp's copies of the models' own (`models/templates/` in the
`llama-cpp-python` sdist, read at test time by tests/llamacpp_sources.py). Each is put in a
tokenizer directory (SmolLM2's byte-level BPE vocabulary plus the family's special tokens) and
rendered by worker.tokenizer and by `AutoTokenizer.apply_chat_template` on the same files:
same text, same prompt token ids, for several conversations and the thinking switches.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.llamacpp_sources import published_template
from worker.loader import load_tokenizer
from worker.tokenizer import Tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local directory: never the hub
transformers = pytest.importorskip("transformers")

# name -> (published template, bos, eos, the family's special tokens)
DEEPSEEK = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
FAMILIES: dict[str, tuple[str, str | None, str, list[str]]] = {
    "qwen3": ("Qwen-Qwen3-0.6B", None, "<|im_end|>", ["<|im_start|>", "<|im_end|>"]),
    "qwq": ("Qwen-QwQ-32B", None, "<|im_end|>", ["<|im_start|>", "<|im_end|>"]),
    "r1-distill-qwen": (
        "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B",
        DEEPSEEK[0],
        DEEPSEEK[1],
        DEEPSEEK,
    ),
    "r1-distill-llama": (
        "deepseek-ai-DeepSeek-R1-Distill-Llama-8B",
        DEEPSEEK[0],
        DEEPSEEK[1],
        DEEPSEEK,
    ),
    "granite3.3": (
        "ibm-granite-granite-3.3-2B-Instruct",
        "<|end_of_text|>",
        "<|end_of_text|>",
        ["<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>", "<|tool_call|>"],
    ),
    "mistral-small3.2": (
        "Mistral-Small-3.2-24B-Instruct-2506",
        "<s>",
        "</s>",
        ["<s>", "</s>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"],
    ),
}
THINK = ["<think>", "</think>"]

SYSTEM = {"role": "system", "content": "You are terse. Answer in one line."}
USER = {"role": "user", "content": "What is the capital of France?"}
CONVERSATIONS: dict[str, list[dict[str, Any]]] = {
    "user": [USER],
    "system+user": [SYSTEM, USER],
    "multi-turn": [
        SYSTEM,
        USER,
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy? Say it twice:\n\n  Rome, Rome."},
    ],
    "reasoning-turn": [
        USER,
        {"role": "assistant", "content": "Paris.", "reasoning_content": "France -> Paris."},
        {"role": "user", "content": "Sure?"},
    ],
    "unicode": [{"role": "user", "content": "Ça va ? 日本語で答えて 🙂 — ok"}],
}


def tokenizer_dir(root: Path, family: str) -> Path:
    """SmolLM2's tokenizer + the family's special tokens, its template, bos and eos."""
    template_name, bos, eos, specials = FAMILIES[family]
    out = root / family
    if (out / "tokenizer_config.json").exists():
        return out
    out.mkdir(parents=True)
    base = _base_tokenizer()
    from tokenizers import AddedToken

    base.tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    base.tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK])
    base.tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos,
        "eos_token": eos,
        "add_bos_token": False,
        "chat_template": published_template(template_name),
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False))
    return out


@functools.cache
def _smollm2_json() -> str:
    return load_tokenizer().tok.to_str()


def _base_tokenizer() -> Tokenizer:
    from tokenizers import Tokenizer as HFTokenizer

    return Tokenizer(
        HFTokenizer.from_str(_smollm2_json()),
        chat_template=None,
        bos_token=None,
        eos_token=None,
        eos_token_ids=[],
    )


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("templates")


_LOADED: dict[str, tuple[Tokenizer, Any]] = {}


def both(root: Path, family: str) -> tuple[Tokenizer, Any]:
    """(ours, transformers') on the same directory, loaded once per family."""
    if family not in _LOADED:
        path = tokenizer_dir(root, family)
        hf = transformers.AutoTokenizer.from_pretrained(str(path))
        _LOADED[family] = Tokenizer.from_hf_dir(path), hf
    return _LOADED[family]


def hf_ids(hf: Any, messages: list[dict[str, Any]], **kwargs: Any) -> list[int]:
    out = hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, **kwargs)
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def check_same(ours: Tokenizer, hf: Any, messages: list[dict[str, Any]], **kwargs: Any) -> str:
    expected = hf.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False, **kwargs
    )
    assert ours.apply_chat_template(messages, True, **kwargs) == expected
    ids, _ = ours.render_chat(messages, True, **kwargs)
    assert ids == hf_ids(hf, messages, **kwargs)
    return expected


@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_renders_like_transformers(dirs: Path, family: str, conversation: str) -> None:
    ours, hf = both(dirs, family)
    messages = CONVERSATIONS[conversation]
    text = check_same(ours, hf, messages)
    assert messages[-1]["content"].split()[0] in text  # the conversation is in it


@pytest.mark.parametrize("conversation", sorted(CONVERSATIONS))
def test_qwen3_thinking_on_and_off(dirs: Path, conversation: str) -> None:
    ours, hf = both(dirs, "qwen3")
    messages = CONVERSATIONS[conversation]
    on = check_same(ours, hf, messages, enable_thinking=True)
    off = check_same(ours, hf, messages, enable_thinking=False)
    assert on.endswith("<|im_start|>assistant\n")
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # thinking skipped
    assert check_same(ours, hf, messages) == on  # thinking is Qwen3's default


def test_r1_distill_and_granite_switches(dirs: Path) -> None:
    """llama.cpp's R1-distill templates honour enable_thinking; Granite 3.3's `thinking`."""
    ours, hf = both(dirs, "r1-distill-qwen")
    on = check_same(ours, hf, [USER], enable_thinking=True)
    assert on.endswith("<｜Assistant｜><think>\n")  # the prompt opens the think block
    assert check_same(ours, hf, [USER], enable_thinking=False).endswith("<think>\n</think>")
    ours, hf = both(dirs, "granite3.3")
    assert "<think>" in check_same(ours, hf, [USER], thinking=True)
    assert "<think>" not in check_same(ours, hf, [USER], thinking=False)


def test_template_errors_match(dirs: Path) -> None:
    """Mistral's template refuses roles that do not alternate, in both renderers."""
    from jinja2.exceptions import TemplateError

    ours, hf = both(dirs, "mistral-small3.2")
    bad = [USER, USER]
    with pytest.raises(TemplateError, match="alternate"):
        hf.apply_chat_template(bad, tokenize=False)
    with pytest.raises(TemplateError, match="alternate"):
        ours.apply_chat_template(bad)


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city, «today».",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "e.g. Paris"}},
                "required": ["city"],
            },
        },
    }
]
TOOL_TURNS = [
    USER,
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "18°C, sunny"},
]


@pytest.mark.parametrize("family", ["qwen3", "qwq", "granite3.3"])
def test_tools_render_like_transformers(dirs: Path, family: str) -> None:
    """The `tools=` variable (tojson of the schemas) and tool turns, as transformers renders."""
    ours, hf = both(dirs, family)
    text = check_same(ours, hf, TOOL_TURNS, tools=TOOLS)
    assert "get_weather" in text and "18°C" in text
