"""Two routers behind one edge (LLMAAS_ROUTERS=2), real processes and the real model: calls
spread over both, `kill -9` of a router under load keeps clients served by the other
(failover before the first token), and a stream cut after its first token ends with an
error instead of being restarted elsewhere.

The same load-and-kill runs on PostgreSQL + Redis (LLMAAS_DATABASE_URL / LLMAAS_REDIS_URL, a
scratch database and key prefix) when those services answer: every completed request then
has its usage and audit records in PostgreSQL and `llmaas-admin audit verify` passes.

Kept lean for a 2-core machine: one worker, small max_tokens, every wait bounded (bounds
are upper limits a slow machine meets, never asserted durations).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import psycopg
import pytest
import redis

from tests.mesh.router.pg_testkit import scratch_database, url_of
from tools.ops.admin import cli as admin
from tools.run_mesh import MeshHandle, start_mesh

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

MODEL = "smollm2:135m"
ROUTERS = ("router-1", "router-2")
REDIS_URL = os.environ.get("LLMAAS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _start(run_dir, **extra: str) -> MeshHandle:
    env = dict(os.environ)
    for key in ("LLMAAS_DATABASE_URL", "LLMAAS_REDIS_URL", "LLMAAS_REDIS_PREFIX"):
        env.pop(key, None)
    env.update({"LLMAAS_WORKER_NUM_THREADS": "1", **extra})
    return start_mesh(
        env, workers=1, embeddings=False, routers=2, run_dir=run_dir, ready_timeout_s=300
    )


@pytest.fixture(scope="class")  # stopped before the PostgreSQL + Redis mesh starts
def mesh(tmp_path_factory) -> Iterator[MeshHandle]:
    handle = _start(tmp_path_factory.mktemp("mesh"))
    yield handle
    handle.stop()


def ask(mesh: MeshHandle, content: str = "Say hi.", max_tokens: int = 6) -> httpx.Response:
    return httpx.post(
        f"{mesh.url}/v1/chat/completions",
        timeout=120,
        headers={"Authorization": f"Bearer {mesh.api_key}"},
        json={
            "model": MODEL,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "temperature": 0,
        },
    )


def metric_sum(mesh: MeshHandle, router: str, name: str) -> float:
    """Sum of a metric's samples on one router's own metrics port (0 when it is down)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{mesh.metrics_ports[router]}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + "{", name + " "))
    )


def wait_for(predicate: Callable[[], bool], timeout_s: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def kill9(mesh: MeshHandle, name: str) -> None:
    proc = mesh.processes[name]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)


def health(mesh: MeshHandle) -> httpx.Response:
    return httpx.get(f"{mesh.url}/health", timeout=10)


def both_serving(mesh: MeshHandle) -> bool:
    reply = health(mesh)
    routers = reply.json().get("routers", {})
    return reply.status_code == 200 and list(routers.values()) == ["SERVING", "SERVING"]


def bring_back(mesh: MeshHandle, name: str) -> None:
    mesh.restart(name)
    assert wait_for(lambda: both_serving(mesh), 180), health(mesh).text


@dataclass
class Load:
    """Client threads sending chat requests until stopped; each result says whether the
    request started after the kill."""

    mesh: MeshHandle
    killed: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    results: list[tuple[bool, int, dict, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self, n: int) -> None:
        for i in range(200):  # bounded
            if self.stop.is_set():
                return
            after = self.killed.is_set()
            try:
                reply = ask(self.mesh, f"Client {n} request {i}: name a colour.")
                body, status = reply.json(), reply.status_code
                request_id = reply.headers.get("x-request-id", "")
            except (httpx.HTTPError, ValueError) as exc:  # a dropped connection, not JSON
                body, status, request_id = {"exception": repr(exc)}, -1, ""
            with self._lock:
                self.results.append((after, status, body, request_id))

    def count(self, after: bool, status: int = 200) -> int:
        with self._lock:
            return sum(1 for a, s, _, _ in self.results if a == after and s == status)

    @contextlib.contextmanager
    def running(self, clients: int = 3) -> Iterator[Load]:
        threads = [threading.Thread(target=self._client, args=(n,)) for n in range(clients)]
        for t in threads:
            t.start()
        try:
            yield self
        finally:
            self.stop.set()
            for t in threads:
                t.join(180)


def kill_a_router_under_load(mesh: MeshHandle, victim: str) -> Load:
    """Load through the edge, `kill -9` of `victim` once both routers served some, then
    more load: the requests started after the kill all succeed (the other router serves
    them, failing over those that picked the dead one); those in flight at the kill end as
    an answer or a clean 503 error object, never a dropped connection."""
    before = {r: metric_sum(mesh, r, "llmaas_requests_total") for r in ROUTERS}
    load = Load(mesh)

    def both_served() -> bool:
        return load.count(False) >= 6 and all(
            metric_sum(mesh, r, "llmaas_requests_total") > before[r] for r in ROUTERS
        )

    with load.running():
        assert wait_for(both_served, 300), load.results
        kill9(mesh, victim)
        load.killed.set()
        assert wait_for(lambda: load.count(True) >= 8, 300), load.results
    for after, status, body, _ in load.results:
        if after:
            assert status == 200, body
        else:
            assert status in (200, 503), body
            assert status == 200 or body["error"]["message"], body
    reply = health(mesh)
    assert reply.status_code == 200, reply.text
    assert "unreachable" in reply.json()["routers"][mesh.router_addresses[ROUTERS.index(victim)]]
    return load


# -- in-process state (each router its own SQLite store) ---------------------------------


class TestInProcessState:
    """Each router with its own SQLite store and in-process limits."""

    def test_calls_spread_over_both_routers(self, mesh):
        assert both_serving(mesh)
        for _ in range(6):
            reply = ask(mesh)
            assert reply.status_code == 200, reply.text
        served = {r: metric_sum(mesh, r, "llmaas_requests_total") for r in ROUTERS}
        assert all(n > 0 for n in served.values()), served

    def test_kill_9_of_a_router_under_load_keeps_clients_served(self, mesh):
        kill_a_router_under_load(mesh, "router-2")
        bring_back(mesh, "router-2")
        assert ask(mesh).status_code == 200

    def test_a_stream_cut_after_its_first_token_ends_with_an_error_not_a_restart(self, mesh):
        events, victim = self._stream_and_kill_its_router(mesh)
        errors = [e for e in events if "error" in e]
        assert errors, json.dumps(events[-3:])
        assert events[-1] is errors[-1]  # nothing after the error: no second answer spliced in
        choices = [c for e in events for c in e.get("choices", [])]
        assert sum(1 for c in choices if c["delta"].get("role") == "assistant") == 1
        assert not any(c.get("finish_reason") in ("stop", "length") for c in choices)
        assert ask(mesh).status_code == 200  # the other router serves the next request
        bring_back(mesh, victim)

    def _stream_and_kill_its_router(self, mesh) -> tuple[list[dict], str]:
        """Streams a long answer (`ignore_eos`, so the model cannot finish early) and, once
        tokens flow, kills the router serving it: the one whose inter-token latency count
        moved, since this is the only stream in the mesh. No guess about the round robin."""
        assert wait_for(lambda: both_serving(mesh), 180)
        gaps = "llmaas_inter_token_latency_seconds_count"
        before = {r: metric_sum(mesh, r, gaps) for r in ROUTERS}

        def serving() -> str | None:
            return next((r for r in ROUTERS if metric_sum(mesh, r, gaps) > before[r]), None)

        events: list[dict] = []
        victim = ""
        with httpx.stream(
            "POST",
            f"{mesh.url}/v1/chat/completions",
            timeout=120,
            headers={"Authorization": f"Bearer {mesh.api_key}"},
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": "Count from 1 to 500, one per line."}],
                "max_tokens": 400,
                "ignore_eos": True,
                "temperature": 0,
                "stream": True,
            },
        ) as reply:
            assert reply.status_code == 200
            for line in reply.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                events.append(json.loads(line[6:]))
                tokens = sum(
                    1 for e in events for c in e.get("choices", []) if c["delta"].get("content")
                )
                if not victim and tokens >= 2:  # a second token: its router timed a gap
                    assert wait_for(lambda: serving() is not None, 30), before
                    victim = serving() or ""
                    kill9(mesh, victim)
        assert victim, events
        return events, victim


# -- PostgreSQL + Redis (skipped when they do not answer) ---------------------------------


def _redis_or_skip() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis does not answer at {REDIS_URL} ({exc}); shared-state e2e skipped")


@pytest.fixture(scope="module")
def shared_mesh(tmp_path_factory) -> Iterator[tuple[MeshHandle, str]]:
    pytest.importorskip("mesh.router.pg.store", reason="the PostgreSQL store is not there")
    pytest.importorskip("mesh.redis_state", reason="the Redis shared state is not there")
    _redis_or_skip()
    prefix = f"llmaas-e2e-{uuid.uuid4().hex[:12]}"
    with scratch_database() as dbname:  # skips when PostgreSQL does not answer
        handle = _start(
            tmp_path_factory.mktemp("shared"),
            LLMAAS_DATABASE_URL=url_of(dbname),
            LLMAAS_REDIS_URL=REDIS_URL,
            LLMAAS_REDIS_PREFIX=prefix,
        )
        try:
            yield handle, url_of(dbname)
        finally:
            handle.stop()
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if keys:
                client.delete(*keys)


def test_on_postgresql_and_redis_a_killed_router_loses_no_completed_record(shared_mesh, capsys):
    mesh, database = shared_mesh
    load = kill_a_router_under_load(mesh, "router-2")
    completed = {rid for _, status, _, rid in load.results if status == 200}
    assert len(completed) >= 14 and "" not in completed
    with psycopg.connect(database) as conn:
        usage = {r for (r,) in conn.execute("SELECT request_id FROM usage").fetchall()}
        audited = {r for (r,) in conn.execute("SELECT request_id FROM audit").fetchall()}
    assert completed <= usage, sorted(completed - usage)[:5]
    assert completed <= audited, sorted(completed - audited)[:5]
    rc = admin.main(
        ["--addr", mesh.router_addresses[0], "--key", mesh.admin_key, "audit", "verify"]
    )
    assert rc == 0, capsys.readouterr()
