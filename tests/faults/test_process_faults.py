"""Process faults against a real supervised mesh (2 workers, the launcher's Supervisor):

- a worker `kill -9` under streaming load: every request not yet streaming succeeds (the
  router fails over), the supervisor brings the worker back into rotation;
- a router `kill -9`: restarted, the mesh serves again;
- the filter down and back: 503 `filter_unavailable` meanwhile (fail closed), then served;
- a slow reader and a storm of 50 dropped streams: others keep being served.
Every accepted request has its usage and audit record. Bounds are generous upper limits
(a slow 2-core CI machine meets them); nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from unittest import mock

import grpc
import httpx
import pytest

from mesh.pb import worker_pb2, worker_pb2_grpc
from mesh.wire import MD_MESH_TOKEN
from tools.ops.admin import cli as admin
from tools.run_mesh import MeshHandle, Supervisor, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

MODEL = "smollm2:135m"


@dataclass
class Mesh:
    handle: MeshHandle
    supervisor: Supervisor


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    handle = start_mesh(
        workers=2,
        embeddings=False,
        run_dir=tmp_path_factory.mktemp("faults"),
        ready_timeout_s=300,
    )
    supervisor = Supervisor(handle, initial_backoff_s=0.5, out=io.StringIO())
    stop = threading.Event()
    loop = threading.Thread(target=supervisor.run, args=(stop, 0.2), daemon=True)
    loop.start()
    try:
        for i in (1, 2):
            assert wait_for(lambda i=i: rotations(handle, i) >= 1, 180), f"worker-{i} never ready"
        yield Mesh(handle, supervisor)
    finally:
        stop.set()
        loop.join(30)
        handle.stop()


def wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def rotations(handle: MeshHandle, i: int) -> int:
    """How often the router put worker-i into rotation (its log says so each time)."""
    log = handle.run_dir / "logs" / "router.log"
    port = handle.ports.workers[i - 1]
    text = log.read_text(errors="replace") if log.exists() else ""
    return text.count(f"worker 127.0.0.1:{port} (worker-{i}) in rotation")


def admin_json(handle: MeshHandle, *args: str):
    out = io.StringIO()
    # The control plane's token, in case admin calls need it (plain mode).
    with (
        mock.patch.dict(os.environ, {"LLMAAS_MESH_TOKEN": handle.mesh_token}),
        contextlib.redirect_stdout(out),
    ):
        rc = admin.main(["--addr", handle.router_address, "--key", handle.admin_key, *args])
    assert rc == 0, out.getvalue()
    return json.loads(out.getvalue())


def usage_requests(handle: MeshHandle) -> int:
    return int(admin_json(handle, "usage", "--tenant", "dev", "--json")["total"]["requests"])


def audited_ids(handle: MeshHandle) -> set[str]:
    records = admin_json(handle, "audit", "--tenant", "dev", "--limit", "1000", "--json")
    return {r["request_id"] for r in records}


def body(i: int, max_tokens: int = 24, stream: bool = True) -> dict:
    out = {
        "model": MODEL,
        "max_tokens": max_tokens,
        "temperature": 0,
        "ignore_eos": True,
        "stream": stream,
        "messages": [{"role": "user", "content": f"Tell me about the number {i}."}],
    }
    if stream:
        out["stream_options"] = {"include_usage": True}
    return out


@dataclass
class Outcome:
    status: int = 0
    request_id: str = ""
    started_at: float | None = None  # when the 200 headers came (the stream began)
    completed: bool = False  # usage chunk and [DONE] seen
    error: str = ""


async def stream_one(
    client: httpx.AsyncClient, i: int, max_tokens: int = 24, out: Outcome | None = None
) -> Outcome:
    out = out or Outcome()
    try:
        async with client.stream("POST", "/v1/chat/completions", json=body(i, max_tokens)) as r:
            out.status = r.status_code
            out.request_id = r.headers.get("x-request-id", "")
            if r.status_code != 200:
                out.error = (await r.aread()).decode(errors="replace")
                return out
            out.started_at = time.monotonic()
            usage = done = False
            async for line in r.aiter_lines():
                usage = usage or '"usage":{' in line.replace(" ", "")
                done = done or line == "data: [DONE]"
            out.completed = usage and done
    except httpx.HTTPError as exc:
        out.error = repr(exc)
    return out


def client(handle: MeshHandle) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=handle.url,
        headers={"Authorization": f"Bearer {handle.api_key}"},
        timeout=httpx.Timeout(180),
        limits=httpx.Limits(max_connections=200),
    )


def chat_ok(handle: MeshHandle, i: int = 0) -> bool:
    try:
        r = httpx.post(
            f"{handle.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {handle.api_key}"},
            json=body(i, max_tokens=4, stream=False),
            timeout=60,
        )
    except httpx.HTTPError:
        return False
    return r.status_code == 200


def records_landed(handle: MeshHandle, ids: set[str], requests: int) -> bool:
    """Every id audited and the usage request count reached (both written as requests end)."""
    return ids <= audited_ids(handle) and usage_requests(handle) >= requests


# -- worker kill -9 under streaming load ----------------------------------------------------


def test_worker_kill9_under_load_loses_no_unstarted_request_and_it_comes_back(mesh):
    handle = mesh.handle
    back_before = rotations(handle, 1)
    usage_before = usage_requests(handle)
    victim = handle.processes["worker-1"]

    async def load() -> tuple[list[Outcome], list[Outcome], float]:
        async with client(handle) as c:
            seen = [Outcome() for _ in range(8)]
            first = [asyncio.create_task(stream_one(c, i, 48, o)) for i, o in enumerate(seen)]
            # Kill once some streams run (on either worker), with others still to begin.
            while sum(o.started_at is not None for o in seen) < 2 and not all(
                t.done() for t in first
            ):
                await asyncio.sleep(0.05)
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            # A second wave right after the kill: whatever the router sends to the dead worker
            # before it notices must fail over.
            second = [asyncio.create_task(stream_one(c, 100 + i)) for i in range(6)]
            done = list(await asyncio.gather(*first)), list(await asyncio.gather(*second))
            return *done, killed_at

    first, second, killed_at = asyncio.run(load())
    outcomes = first + second
    # The edge answers 200 only once the first chunk exists: a request that was not streaming
    # yet when its worker died has no excuse to fail (it fails over); one that was may be cut.
    refused = [o for o in outcomes if o.status != 200]
    assert not refused, f"requests failed before their stream began: {refused}"
    assert all(o.completed for o in second), f"requests sent after the kill failed: {second}"

    # The supervisor restarted it and the router took it back into rotation.
    assert wait_for(lambda: rotations(handle, 1) > back_before, 240), "worker-1 not back"
    print(f"\nFIGURE worker-1 back in rotation {time.monotonic() - killed_at:.1f}s after kill -9")
    assert handle.processes["worker-1"] is not victim
    assert mesh.supervisor.restarts.get("worker-1", 0) >= 1

    accepted = {o.request_id for o in outcomes if o.status == 200}
    # Every accepted request is audited and billed once (a cut one for what it streamed).
    assert wait_for(lambda: accepted <= audited_ids(handle), 60), "an accepted request is unaudited"
    assert wait_for(lambda: usage_requests(handle) >= usage_before + len(accepted), 60)


def usage_total(handle: MeshHandle) -> dict[str, int]:
    total = admin_json(handle, "usage", "--tenant", "dev", "--json")["total"]
    return {k: int(total.get(k, 0)) for k in ("requests", "input_tokens", "output_tokens")}


def busy_worker(handle: MeshHandle) -> str | None:
    """The child name of the worker running a sequence now (GetLoad on each)."""
    for i, address in enumerate(handle.worker_addresses, start=1):
        with grpc.insecure_channel(address) as channel:
            try:
                load = worker_pb2_grpc.WorkerStub(channel).GetLoad(
                    worker_pb2.LoadRequest(),
                    metadata=[(MD_MESH_TOKEN, handle.mesh_token)],
                    timeout=5,
                )
            except grpc.RpcError:
                continue
        if load.num_running:
            return f"worker-{i}"
    return None


def texts_of(line: str) -> str:
    """The answer text an SSE line carries ('' for the role, usage, error or [DONE])."""
    if not line.startswith("data: {"):
        return ""
    event = json.loads(line.removeprefix("data: "))
    return "".join(c.get("delta", {}).get("content") or "" for c in event.get("choices", []))


def test_a_stream_cut_by_a_worker_crash_is_billed_what_it_streamed(mesh):
    """Kill the worker serving a long stream once it has streamed a few chunks: the router
    bills the request its prompt and at least the tokens it relayed, and audits it."""
    handle = mesh.handle
    for i in (1, 2):  # the mesh serves (the kill test above may have restarted a worker)
        assert wait_for(lambda i=i: chat_ok(handle, i), 240), "the mesh does not serve"
    before = usage_total(handle)

    async def cut_stream() -> tuple[str, int, bool]:
        chunks, victim = 0, None
        async with (
            client(handle) as c,
            c.stream("POST", "/v1/chat/completions", json=body(500, max_tokens=1500)) as r,
        ):
            assert r.status_code == 200
            async for line in r.aiter_lines():
                chunks += bool(texts_of(line))  # a chunk with text holds >= 1 token
                if chunks == 5 and victim is None:
                    victim = busy_worker(handle)
                    assert victim, "no worker reports the running stream"
                    os.kill(handle.processes[victim].pid, signal.SIGKILL)
                finished = line == "data: [DONE]"
            return r.headers["x-request-id"], chunks, finished

    request_id, chunks, finished = asyncio.run(cut_stream())
    assert not finished, "the stream was not cut (it ran to its end)"
    assert wait_for(lambda: usage_total(handle)["requests"] >= before["requests"] + 1, 60)
    after = usage_total(handle)
    assert after["requests"] == before["requests"] + 1
    assert after["input_tokens"] > before["input_tokens"]
    assert after["output_tokens"] - before["output_tokens"] >= chunks >= 5
    assert request_id in audited_ids(handle)


# -- router kill -9 ----------------------------------------------------------------------


def test_router_kill9_is_restarted_and_the_mesh_serves_again(mesh):
    handle = mesh.handle
    victim = handle.processes["router"]
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    victim.wait(60)
    assert wait_for(lambda: handle.processes["router"] is not victim, 120)
    assert wait_for(lambda: chat_ok(handle, 7), 180), "the mesh did not serve again"
    print(f"\nFIGURE served again {time.monotonic() - killed_at:.1f}s after the router's kill -9")
    assert all(chat_ok(handle, i) for i in range(3))


# -- filter down and back ----------------------------------------------------------------


def test_filter_down_fails_closed_then_serves_again(mesh):
    handle = mesh.handle
    mesh.supervisor.hold("filter")  # a planned outage: the supervisor waits
    try:
        victim = handle.processes["filter"]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(60)
        replies = [
            httpx.post(
                f"{handle.url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {handle.api_key}"},
                json=body(i, max_tokens=4, stream=False),
                timeout=60,
            )
            for i in range(3)
        ]
    finally:
        mesh.supervisor.release("filter")
        released_at = time.monotonic()
    for r in replies:
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "filter_unavailable"
    assert wait_for(lambda: handle.processes["filter"] is not victim, 120)
    assert wait_for(lambda: chat_ok(handle, 9), 180), "not served after the filter came back"
    print(f"\nFIGURE served again {time.monotonic() - released_at:.1f}s after the filter's release")


# -- slow client, disconnect storm -------------------------------------------------------


def test_a_slow_reader_does_not_hold_up_others(mesh):
    handle = mesh.handle

    async def scenario() -> tuple[bool, list[Outcome]]:
        async with (
            client(handle) as c,
            c.stream("POST", "/v1/chat/completions", json=body(1, 64)) as slow,
        ):
            assert slow.status_code == 200
            lines = slow.aiter_lines()
            await anext(lines)  # then stops reading while others are served
            t = time.monotonic()
            others = await asyncio.gather(*(stream_one(c, 50 + i) for i in range(4)))
            print(f"\nFIGURE 4 streams beside a stalled reader: {time.monotonic() - t:.1f}s")
            done = False
            async for line in lines:
                done = done or line == "data: [DONE]"
            return done, others

    slow_done, others = asyncio.run(scenario())
    assert all(o.status == 200 and o.completed for o in others), others
    assert slow_done


def test_a_disconnect_storm_leaves_the_service_up_and_every_request_in_usage(mesh):
    handle = mesh.handle
    usage_before = usage_requests(handle)

    async def drop(c: httpx.AsyncClient, i: int) -> str:
        """Opens a long stream, reads its first line, hangs up; the request id if accepted."""
        try:
            async with c.stream("POST", "/v1/chat/completions", json=body(i, 400)) as r:
                if r.status_code != 200:
                    return ""
                await anext(r.aiter_lines())
                return r.headers["x-request-id"]
        except httpx.HTTPError:
            return ""

    async def storm() -> tuple[list[str], list[Outcome]]:
        async with client(handle) as c:
            dropped = await asyncio.gather(*(drop(c, 200 + i) for i in range(50)))
            after = await asyncio.gather(*(stream_one(c, 300 + i) for i in range(3)))
            return [d for d in dropped if d], list(after)

    dropped, after = asyncio.run(storm())
    assert all(o.status == 200 and o.completed for o in after), after
    assert len(dropped) == 50  # each was accepted before its client went away
    ids = set(dropped) | {o.request_id for o in after}
    assert wait_for(lambda: records_landed(handle, ids, usage_before + len(ids)), 120), (
        "a cancelled request is missing from usage or audit"
    )
    assert usage_requests(handle) == usage_before + len(ids)
