"""`llmaas-admin usage` against what the clients received, token for token, cent for cent.

A real mesh; the dev tenant makes non-streamed, streamed and cancelled requests; the CLI's
totals must equal the sum of the `usage` objects (and cost headers / usage fields) the
clients got, plus what was streamed to the cancelled ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from decimal import Decimal

import httpx
import pytest

from tools.ops.admin import cli as admin
from tools.run_mesh import start_mesh

pytestmark = pytest.mark.e2e

MODEL = "smollm2:135m"


def _chat(client: httpx.Client, content: str, **extra) -> httpx.Response:
    body = {
        "model": MODEL,
        "max_tokens": 8,
        "temperature": 0,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }
    return client.post("/v1/chat/completions", json=body)


def _streamed(client: httpx.Client, content: str) -> dict:
    body = {
        "model": MODEL,
        "max_tokens": 8,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": content}],
    }
    usage = None
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: {") and '"usage":{' in line.replace(" ", ""):
                usage = json.loads(line[6:])["usage"] or usage
    assert usage is not None
    return usage


def _cancelled(client: httpx.Client) -> int:
    """Reads two content chunks of a long answer, then hangs up; returns chunks seen."""
    body = {
        "model": MODEL,
        "max_tokens": 400,
        "temperature": 0,
        "stream": True,
        "ignore_eos": True,
        "messages": [{"role": "user", "content": "Tell me a long story."}],
    }
    seen = 0
    with client.stream("POST", "/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if '"content":' in line and '"content":""' not in line.replace(" ", ""):
                seen += 1
            if seen == 2:
                break
    return seen


def _usage_total(mesh) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = admin.main(
            ["--addr", mesh.router_address, "--key", mesh.admin_key]
            + ["usage", "--tenant", "dev", "--json"]
        )
    assert rc == 0
    return json.loads(out.getvalue())["total"]


def test_admin_usage_equals_what_clients_received(tmp_path):
    mesh = start_mesh(workers=1, run_dir=tmp_path, embeddings=False)
    try:
        headers = {"Authorization": f"Bearer {mesh.api_key}"}
        with httpx.Client(base_url=mesh.url, headers=headers, timeout=120) as client:
            plain = [_chat(client, f"Name a colour, number {i}.") for i in range(3)]
            assert all(r.status_code == 200 for r in plain)
            streamed = [_streamed(client, f"Name a fruit, number {i}.") for i in range(2)]
            chunks_seen = _cancelled(client)
        usages = [r.json()["usage"] for r in plain] + streamed
        want_in = sum(u["prompt_tokens"] for u in usages)
        want_out = sum(u["completion_tokens"] for u in usages)
        want_cost = sum(Decimal(r.headers["x-llmaas-cost-eur"]) for r in plain) + sum(
            Decimal(str(u["cost_eur"])) for u in streamed
        )

        # The cancelled request is recorded when the router sees the hang-up, which races
        # with this query: wait for it (bounded), so a lost record still fails below.
        deadline = time.monotonic() + 15
        total = _usage_total(mesh)
        while int(total["requests"]) < len(usages) + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            total = _usage_total(mesh)
    finally:
        mesh.stop()
    # Completed requests: exact. The cancelled one adds what was streamed to it (at least
    # the chunks the client read) and its prompt.
    assert int(total["requests"]) == len(usages) + 1
    cancelled_out = int(total["output_tokens"]) - want_out
    assert chunks_seen <= cancelled_out < 400
    cancelled_in = int(total["input_tokens"]) - want_in
    assert cancelled_in > 0
    cancelled_cost = (
        Decimal(cancelled_in) * Decimal("0.9") / 10**6 + Decimal(cancelled_out) * 4 / 10**6
    )
    assert Decimal(total["cost_eur"]) == want_cost + cancelled_cost
