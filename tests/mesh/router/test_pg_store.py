"""PostgreSQL-only store behaviour: several routers (stores with their own pools) writing
one audit chain, concurrent starts, a bad record in a shared commit, durability across
SIGKILL, and the database going away and coming back (through a TCP proxy the test cuts:
the machine's shared server is never touched). Bounded retry loops below are hang guards,
not timing assertions. Skips, saying why, when 127.0.0.1:5432 does not answer."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from pg_testkit import AUDIT_KEY, require_pg, scratch_database, sql, url_of

from mesh.router.audit import AuditEntry
from mesh.router.content import ContentRecorder
from mesh.router.pg.schema import CHAIN_LOCK
from mesh.router.pg.store import PgStore, StoreUnavailable, session_options
from mesh.router.store import UsageEntry
from tests.netproxy import NetProxy

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_767_225_600.0


def _entry(i: int, model: str = "m") -> AuditEntry:
    return AuditEntry(
        time="2026-01-01T00:00:00.000Z",
        request_id=f"r{i}",
        tenant="t",
        key_id="key_a",
        model=model,
        action="chat.completions",
        outcome="ok",
        status=200,
    )


def _usage(i: int, tokens: int = 1) -> UsageEntry:
    return UsageEntry(T0, f"r{i}", "t", "key_a", "m", input_tokens=tokens, cost_eur=Decimal("0.01"))


@pytest.fixture
def db():
    with scratch_database() as name:
        yield name


async def test_two_routers_appending_together_write_one_chain(db) -> None:
    a, b = PgStore(url_of(db), audit_key=AUDIT_KEY), PgStore(url_of(db), audit_key=AUDIT_KEY)
    await asyncio.gather(a.open(), b.open())  # concurrent first starts: one migration
    try:
        versions = sql(db, "SELECT version FROM schema_version ORDER BY version")
        assert versions == [(1,), (2,)]
        chained = await asyncio.gather(
            *((a if i % 2 else b).append(_entry(i), _usage(i)) for i in range(400))
        )
        seqs = sorted(e.seq for e in chained)
        assert seqs == list(range(1, 401))  # no fork, no gap, no duplicate
        result = await b.verify_audit()
        assert result.ok and result.checked == 400, result
        rows = await a.usage("t", 0, 1e12)
        assert rows[0].requests == 400 and rows[0].cost_eur == Decimal("4")
        head = sql(db, "SELECT seq FROM audit_head")
        anchor = sql(db, "SELECT seq, keyed_from FROM audit_anchor")
        assert head == [(400,)] and anchor == [(400, 1)]
    finally:
        await asyncio.gather(a.close(), b.close())


async def test_a_bad_record_in_a_shared_commit_fails_alone(db) -> None:
    store = PgStore(url_of(db), audit_key=AUDIT_KEY)
    await store.open()
    try:
        results = await asyncio.gather(
            store.append(_entry(1), _usage(1)),
            store.append(_entry(2), _usage(2, tokens=2**70)),  # out of BIGINT range
            store.append(_entry(3, model="nul\x00byte"), _usage(3)),
            return_exceptions=True,
        )
        assert isinstance(results[1], psycopg.DataError), results
        assert [r.seq for r in (results[0], results[2])] == [1, 2]
        assert results[2].model == "nul\ufffdbyte"  # PostgreSQL text holds no NUL
        assert (await store.verify_audit()).checked == 2
    finally:
        await store.close()


async def test_lost_database_fails_calls_then_recovers_without_restart(db) -> None:
    with NetProxy("127.0.0.1", 5432) as proxy:
        store = PgStore(url_of(db, proxy.port), audit_key=AUDIT_KEY, timeout_s=2)
        await store.open()
        try:
            acknowledged = [await store.append(_entry(i), _usage(i)) for i in range(3)]
            proxy.cut()
            with pytest.raises(StoreUnavailable, match="unavailable"):
                await store.append(_entry(10), _usage(10))
            with pytest.raises(StoreUnavailable):
                await store.usage("t", 0, 1e12)
            proxy.restore()
            for _ in range(60):  # hang guard: the pool reconnects on the next call
                try:
                    acknowledged.append(await store.append(_entry(11), _usage(11)))
                    break
                except StoreUnavailable:
                    await asyncio.sleep(0.5)
            assert len(acknowledged) == 4
            result = await store.verify_audit()
            assert result.ok, result
            stored = {r[0] for r in sql(db, "SELECT request_id FROM audit")}
            assert {e.request_id for e in acknowledged} <= stored
        finally:
            await store.close()


async def test_an_unreachable_database_at_start_is_a_clear_error(db) -> None:
    with NetProxy("127.0.0.1", 5432) as proxy:
        proxy.cut()
        store = PgStore(url_of(db, proxy.port), audit_key=AUDIT_KEY, timeout_s=1)
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{proxy.port}/{db}"):
            await store.open()


_CHILD = textwrap.dedent("""
    import asyncio, sys
    from decimal import Decimal
    from mesh.router.audit import AuditEntry
    from mesh.router.pg.store import PgStore
    from mesh.router.store import UsageEntry

    async def main(url):
        store = PgStore(url, audit_key=b"k" * 32)
        await store.open()
        i = 0
        while True:
            i += 1
            entry = AuditEntry(time="2026-01-01T00:00:00.000Z", request_id=f"r{i}", tenant="t",
                               key_id="key_a", model="m", action="chat", outcome="ok", status=200)
            await store.append(entry, UsageEntry(1767225600.0, f"r{i}", "t", "key_a", "m",
                                                 input_tokens=1, cost_eur=Decimal("0.0000009")))
            print(i, flush=True)  # acknowledged: the response may now be sent

    asyncio.run(main(sys.argv[1]))
""")


async def test_sigkill_loses_no_acknowledged_record(db) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, url_of(db)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    acknowledged = 0
    assert child.stdout is not None
    try:
        while acknowledged < 40:
            line = child.stdout.readline()
            assert line, "child died before acknowledging 40 records"
            acknowledged = int(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    store = PgStore(url_of(db), audit_key=AUDIT_KEY)
    await store.open()
    try:
        result = await store.verify_audit()
        assert result.ok, result
        assert result.checked >= acknowledged
        usage = await store.usage("t", 0, 1e12)
        assert usage[0].requests == result.checked
        assert usage[0].cost_eur == Decimal("0.0000009") * result.checked
    finally:
        await store.close()


async def test_a_removed_or_forged_anchor_row_is_reported_and_chained(db) -> None:
    store = PgStore(url_of(db), audit_key=AUDIT_KEY)
    await store.open()
    for i in range(3):
        await store.append(_entry(i), None)
    sql(db, "UPDATE audit_anchor SET seq = 2")  # moved back without the key
    bad = await store.verify_audit()
    assert not bad.ok and "not signed with this audit key" in bad.problem, bad
    sql(db, "DELETE FROM audit_anchor")
    bad = await store.verify_audit()
    assert not bad.ok and "audit_anchor table is missing" in bad.problem, bad
    await store.close()
    again = PgStore(url_of(db), audit_key=AUDIT_KEY)
    await again.open()  # the start says so, in the chain, and anchors the head again
    try:
        (event,) = await again.audit("", "", 1)
        assert (event.seq, event.action, event.outcome) == (4, "audit.anchor", "error")
        assert "missing: records up to seq 3" in event.reason
        assert (await again.verify_audit()).ok
    finally:
        await again.close()


async def test_a_router_gone_silent_holding_the_chain_lock_stalls_nobody_for_long(db) -> None:
    """A router cut off without a reset (a silent partition) while it holds the chain's lock:
    the others' appends fail fast (lock_timeout, so 503, never a hang) until the server ends
    the idle transaction, then go on; the chain has no gap."""
    other = PgStore(url_of(db), audit_key=AUDIT_KEY, timeout_s=1)
    await other.open()
    try:
        await other.append(_entry(1), None)
        with NetProxy("127.0.0.1", 5432) as proxy:
            lost = await psycopg.AsyncConnection.connect(
                url_of(db, proxy.port), **session_options(1)
            )
            await lost.execute("BEGIN")
            await lost.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
            proxy.freeze()
            with pytest.raises(StoreUnavailable, match="lock"):
                await other.append(_entry(2), None)
            for _ in range(60):  # hang guard: the server ends the idle transaction
                try:
                    await other.append(_entry(3), None)
                    break
                except StoreUnavailable:
                    await asyncio.sleep(0.5)
            else:
                pytest.fail("the lost router's lock was never released")
            await lost.close()
        result = await other.verify_audit()
        assert result.ok and result.checked == 2, result
    finally:
        await other.close()


async def test_a_missing_database_is_named_at_start() -> None:
    require_pg()
    store = PgStore(url_of("llmaas_test_no_such_database"), audit_key=AUDIT_KEY, timeout_s=2)
    with pytest.raises(StoreUnavailable, match='database "llmaas_test_no_such_database" does not'):
        await store.open()


async def test_a_retention_run_on_the_content_log_makes_no_master_keys(db, tmp_path) -> None:
    store = PgStore(url_of(db), audit_key=AUDIT_KEY)
    await store.open()  # the schema, content_log included
    await store.close()
    made = []
    content = ContentRecorder(tmp_path / "unused", lambda: made.append(1) or None, url_of(db))
    try:
        assert await content.purge("acme", 0) == 0
        assert made == []  # only deletes: no keyring read or created
    finally:
        content.close()


async def test_commits_are_synchronous_whatever_the_server_default(db) -> None:
    sql(db, f'ALTER DATABASE "{db}" SET synchronous_commit = off')  # an operator's shortcut
    store = PgStore(url_of(db), audit_key=AUDIT_KEY)
    await store.open()
    try:
        assert await store._rows("SHOW synchronous_commit") == [("on",)]
    finally:
        await store.close()


async def test_routers_running_retention_together_purge_once(db) -> None:
    a, b = PgStore(url_of(db), audit_key=AUDIT_KEY), PgStore(url_of(db), audit_key=AUDIT_KEY)
    await asyncio.gather(a.open(), b.open())
    try:
        for i in range(40):
            await a.append(_entry(i), _usage(i))
        now = T0 + 40 * 86400.0
        cutoffs = {"t": now - 86400.0}
        results = await asyncio.gather(
            *(s.purge_expired(cutoffs, None, now) for s in (a, b, a, b)), return_exceptions=True
        )
        done = [r for r in results if r is not None]
        assert len(done) == 1 and not isinstance(done[0], BaseException), results
        assert done[0].usage_rows == 40 and done[0].audit_records == 40
        usage = await b.usage("t", 0, 1e12)
        assert [(r.requests, r.input_tokens, r.cost_eur) for r in usage] == [
            (40, 40, Decimal("0.4"))
        ]  # rolled up once: nothing counted twice
        assert (await a.verify_audit()).ok
    finally:
        await asyncio.gather(a.close(), b.close())
