"""Issue #14 point 1 from outside: the 590 KB prompt is refused 400 (by its bytes, before any
tokenising), alone and three at once, while short requests sent at the same time succeed.

A real mesh (one SmolLM2 worker, with the window it announces). No timing is asserted: the mechanism
(never tokenised) is tested with fakes in tests/mesh/router/test_context_length.py.
"""

from __future__ import annotations

import concurrent.futures as cf

import httpx
import pytest

from tools.run_mesh import start_mesh

pytestmark = pytest.mark.e2e

MODEL = "smollm2:135m"
ISSUE_PROMPT = "Add up the following numbers: " + " ".join(str(i) for i in range(100_000))


def _post(client: httpx.Client, content: str, max_tokens: int) -> httpx.Response:
    body = {
        "model": MODEL,
        "max_tokens": max_tokens,
        "temperature": 0,
        "messages": [{"role": "user", "content": content}],
    }
    return client.post("/v1/chat/completions", json=body)


def test_the_issue_prompt_is_refused_and_short_requests_still_succeed(tmp_path):
    mesh = start_mesh(workers=1, run_dir=tmp_path, embeddings=False)
    try:
        headers = {"Authorization": f"Bearer {mesh.api_key}"}
        with httpx.Client(base_url=mesh.url, headers=headers, timeout=120) as client:
            alone = _post(client, ISSUE_PROMPT, 1)
            with cf.ThreadPoolExecutor(6) as pool:
                big = [pool.submit(_post, client, ISSUE_PROMPT, 1) for _ in range(3)]
                short = [pool.submit(_post, client, f"Say hi, {i}.", 4) for i in range(3)]
                big_replies = [f.result() for f in big]
                short_replies = [f.result() for f in short]
    finally:
        mesh.stop()
    for reply in [alone, *big_replies]:
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
        assert "maximum context length" in error["message"] and "at least" in error["message"]
    assert [r.status_code for r in short_replies] == [200, 200, 200]
