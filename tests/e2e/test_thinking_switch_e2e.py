"""End to end: a thinking model's switch (chat_template_kwargs / reasoning_effort) through the
mesh, on the published DeepSeek-R1 distill chat template (llama.cpp's copy, read from the
llama-cpp-python sdist), whose generation prompt opens `<think>` when thinking is on and closes
it at once when it is off.

Real filter, worker, router and edge. The worker serves a tiny random-weight Llama (its
tokenizer has `<think>` / `</think>` tokens) under a name the catalog does not know. Random
weights write random text, so the test is about the mechanics on the worker's real stream:
thinking on, every generated token before `</think>` (all of them if it never closes) is
reasoning, in `reasoning_content` and `completion_tokens_details.reasoning_tokens`; thinking
off, the answer is all content; a switch the template does not have is a 400 naming it.
"""

from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.llamacpp_sources import published_template
from tools.dev.make_tiny_model import make_tiny_model
from tools.run_mesh import MeshHandle, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

MODEL = "tiny-r1"
MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> MeshHandle:
    root = tmp_path_factory.mktemp("thinking-switch")
    template = published_template("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B")
    model_dir = make_tiny_model(root / MODEL, seed=3, thinking=True)
    cfg = json.loads((model_dir / "tokenizer_config.json").read_text())
    (model_dir / "tokenizer_config.json").write_text(json.dumps({**cfg, "chat_template": template}))
    env = {**os.environ, "LLMAAS_TLS": "0"}
    handle = start_mesh(
        env, model=str(model_dir), embeddings=False, run_dir=root / "run", ready_timeout_s=300
    )
    yield handle
    handle.stop()


def chat(mesh: MeshHandle, **extra: object) -> httpx.Response:
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "temperature": 0}
    return httpx.post(
        f"{mesh.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {mesh.api_key}"},
        json=body | extra,
        timeout=120,
    )


def answer(mesh: MeshHandle, **extra: object) -> tuple[str, str, int, int]:
    """-> (reasoning_content, content, reasoning tokens, completion tokens)."""
    reply = chat(mesh, **extra)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    message, usage = body["choices"][0]["message"], body["usage"]
    assert body["model"] == MODEL and 0 < usage["completion_tokens"] <= MAX_TOKENS
    return (
        message.get("reasoning_content") or "",
        message.get("content") or "",
        usage["completion_tokens_details"]["reasoning_tokens"],
        usage["completion_tokens"],
    )


@pytest.mark.parametrize(
    "switch",
    [{"chat_template_kwargs": {"enable_thinking": True}}, {"reasoning_effort": "high"}],
    ids=["kwargs", "effort"],
)
def test_thinking_on_counts_the_tokens_before_think_close_as_reasoning(mesh, switch) -> None:
    reasoning, content, num_reasoning, num_completion = answer(mesh, **switch)
    assert reasoning  # the prompt opened <think>: the model's first tokens are reasoning
    if not content:  # </think> never came: every generated token is reasoning
        assert num_reasoning == num_completion
    else:  # it closed: the tokens up to it are reasoning, the rest answer
        assert 0 < num_reasoning < num_completion


@pytest.mark.parametrize(
    "switch",
    [{"chat_template_kwargs": {"enable_thinking": False}}, {"reasoning_effort": "none"}, {}],
    ids=["kwargs", "effort", "default"],
)
def test_thinking_off_is_all_answer(mesh, switch) -> None:
    reasoning, content, num_reasoning, _ = answer(mesh, **switch)
    assert content  # the prompt closed </think>: the model answers at once
    if "<think>" not in content:  # random weights did not open a think block themselves
        assert (reasoning, num_reasoning) == ("", 0)


def test_effort_and_kwargs_are_one_switch(mesh) -> None:
    """Greedy on the same weights: reasoning_effort "medium" renders the prompt that
    enable_thinking true does, so the answers are the same."""
    on = answer(mesh, chat_template_kwargs={"enable_thinking": True})
    assert on == answer(mesh, reasoning_effort="medium")  # the same switch, two spellings


def test_a_switch_the_template_lacks_is_refused(mesh) -> None:
    reply = chat(mesh, chat_template_kwargs={"deep_thought": True})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "chat_template_kwargs" and "deep_thought" in error["message"]
    reply = chat(mesh, chat_template_kwargs={"enable_thinking": {"nested": 1}})
    assert reply.status_code == 400 and reply.json()["error"]["param"] == "chat_template_kwargs"
