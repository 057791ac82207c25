"""SIGKILL of the router during load loses no usage or audit record of a completed request."""

from __future__ import annotations

import asyncio
import os
import signal

import httpx
import pytest

from mesh.router.store import SqliteStore
from tools.run_mesh import start_mesh

pytestmark = pytest.mark.e2e

MODEL = "smollm2:135m"


async def _one(client: httpx.AsyncClient, i: int) -> str | None:
    """Request id of a completed streamed answer (usage chunk and [DONE] seen), else None."""
    body = {
        "model": MODEL,
        "max_tokens": 6,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": f"Count to {i}."}],
    }
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            if r.status_code != 200:
                return None
            request_id, usage, done = r.headers["x-request-id"], False, False
            async for line in r.aiter_lines():
                usage = usage or ('"usage": {' in line or '"usage":{' in line)
                done = done or line == "data: [DONE]"
            return request_id if usage and done else None
    except httpx.HTTPError:
        return None


async def _load_then_kill(mesh) -> list[str]:
    headers = {"Authorization": f"Bearer {mesh.api_key}"}
    async with httpx.AsyncClient(base_url=mesh.url, headers=headers, timeout=60) as client:
        tasks = [asyncio.create_task(_one(client, i)) for i in range(12)]
        done: list[str] = []
        for task in asyncio.as_completed(tasks):
            if (rid := await task) is not None:
                done.append(rid)
            if len(done) == 6:  # mid-load: half answered, the rest in flight
                os.kill(mesh.processes["router"].pid, signal.SIGKILL)
        return done


def test_sigkill_of_router_loses_no_completed_record(tmp_path):
    mesh = start_mesh(workers=1, run_dir=tmp_path, embeddings=False)
    try:
        completed = asyncio.run(_load_then_kill(mesh))
        mesh.processes["router"].wait(10)
    finally:
        mesh.stop()
    assert len(completed) >= 6

    async def audited() -> tuple[set[str], bool]:
        store = SqliteStore(tmp_path / "accounts.sqlite3")
        await store.open()
        try:
            entries = await store.audit("dev", "", 10_000)
            return {e.request_id for e in entries if e.outcome == "ok"}, (
                await store.verify_audit()
            ).ok
        finally:
            await store.close()

    ok_ids, chain_ok = asyncio.run(audited())
    assert set(completed) <= ok_ids, f"missing records: {set(completed) - ok_ids}"
    assert chain_ok
