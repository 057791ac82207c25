"""chat_template_kwargs / reasoning_effort through the engine's renderer, on a tiny model whose
chat template is the published DeepSeek-R1 distill one (llama.cpp's copy, which honours
enable_thinking): the prompt opens `<think>` or closes it, and the reasoning splitter starts
inside or outside reasoning accordingly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mesh.pb import common_pb2
from tests.llamacpp_sources import published_template
from worker.config import WorkerConfig
from worker.engine import LLMEngine
from worker.errors import InvalidRequest
from worker.template_switches import with_switches

MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LLMEngine:
    path = tmp_path_factory.mktemp("r1") / "tiny-r1"
    shutil.copytree(tiny_model_dir, path)
    cfg = json.loads((path / "tokenizer_config.json").read_text())
    cfg["chat_template"] = published_template("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B")
    (path / "tokenizer_config.json").write_text(json.dumps(cfg))
    config = WorkerConfig(
        model=str(path), dtype="float32", max_num_seqs=1, max_model_len=256, num_threads=1
    )
    return LLMEngine.from_config(config)[0]


def render(engine: LLMEngine, **options: str) -> tuple[str, bool]:
    """-> (the prompt's text, whether generation starts inside reasoning)."""
    chat = with_switches(list(MESSAGES), common_pb2.ChatOptions(**options))
    ids = engine.tokenize_prompt(chat).ids
    splitter = engine._reasoning_splitter(ids)
    assert splitter is not None  # the template mentions <think>: a thinking model
    return engine.tokenizer.decode(ids, skip_special_tokens=False), splitter.inside


def test_thinking_on_opens_the_think_block(engine: LLMEngine) -> None:
    for options in (
        {"chat_template_kwargs": '{"enable_thinking": true}'},
        {"reasoning_effort": "high"},
    ):
        text, inside = render(engine, **options)
        assert text.endswith("<｜Assistant｜><think>\n") and inside


def test_thinking_off_closes_it(engine: LLMEngine) -> None:
    for options in (
        {"chat_template_kwargs": '{"enable_thinking": false}'},
        {"reasoning_effort": "none"},
        {},  # llama.cpp's copy: thinking only when asked
    ):
        text, inside = render(engine, **options)
        assert text.endswith("<think>\n</think>") and not inside


def test_a_bad_switch_is_refused_naming_its_field(engine: LLMEngine) -> None:
    with pytest.raises(InvalidRequest, match="does not read 'deep'") as err:
        render(engine, chat_template_kwargs='{"deep": 1}')
    assert err.value.param == "chat_template_kwargs"
