"""Database faults: a locked database, a full disk, a broken batch, a write-blocking tamper.

Each one must fail only the writes it hits (the caller gets the error, never a hang), keep
the writer thread alive, and let later writes succeed once the condition clears; while
writes fail, `Accounts.ensure_recording()` refuses requests with 503 `audit_unavailable`
and the service comes back by itself. `wait_for` bounds below are hang guards only (a
broken writer never answers), not timing assertions.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest

from mesh.errors import Unavailable
from mesh.router import accounts as accounts_module
from mesh.router.access import Principal, RequestRecord
from mesh.router.accounts import AUDIT_UNAVAILABLE, RECOVERED_ACTION, Accounts
from mesh.router.audit import AuditEntry
from mesh.router.keys import KeyHasher
from mesh.router.store import SqliteStore
from mesh.router.tenants import Tenant

HANG_GUARD_S = 120
T0 = 1_767_225_600.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


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


async def _bounded(aw):
    return await asyncio.wait_for(aw, HANG_GUARD_S)


@pytest.fixture
async def store(tmp_path: Path):
    # A short busy timeout and two attempts: a locked database fails fast and for sure.
    s = SqliteStore(tmp_path / "a.sqlite3", busy_timeout_ms=20, lock_attempts=2)
    await s.open()
    yield s
    await s.close()


def _lock(path: Path) -> sqlite3.Connection:
    """Another process's connection holding the database exclusively."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


async def test_locked_database_fails_the_write_cleanly_and_recovers(store, tmp_path, caplog):
    await store.append(_entry(1), None)
    holder = _lock(tmp_path / "a.sqlite3")
    caplog.set_level(logging.WARNING, logger="mesh.router.store")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await _bounded(store.append(_entry(2), None))
    # Retried a bounded number of times (2 attempts: one warning), then failed.
    assert sum("database is locked (attempt" in r.message for r in caplog.records) == 1
    with pytest.raises(sqlite3.OperationalError, match="locked"):  # admin writes too
        await _bounded(store.save_tenant(Tenant(name="acme")))
    holder.execute("COMMIT")
    holder.close()
    linked = await _bounded(store.append(_entry(3), None))
    await _bounded(store.save_tenant(Tenant(name="acme")))
    assert linked.seq == 2  # the failed write took no seq
    result = await store.verify_audit()
    assert result.ok and result.checked == 2, result
    assert [t.name for t in await store.load_tenants()] == ["acme"]


async def test_disk_full_fails_the_write_cleanly_and_recovers(store):
    await store.append(_entry(0), None)
    pages = await store._call(lambda c: c.execute("PRAGMA page_count").fetchone()[0])
    # SQLITE_FULL as on a full disk: the file may not grow past its current size.
    await store._call(lambda c: c.execute(f"PRAGMA max_page_count = {pages}"))
    error = None
    for i in range(1, 2000):  # records fill the last free page, then the disk is "full"
        try:
            await _bounded(store.append(_entry(i, model="x" * 200), None))
        except sqlite3.OperationalError as exc:
            error = exc
            break
    assert error is not None and "full" in str(error)
    with pytest.raises(sqlite3.OperationalError, match="full"):  # still full: still clean
        await _bounded(store.append(_entry(10_000, model="y" * 200), None))
    await store._call(lambda c: c.execute("PRAGMA max_page_count = 1073741823"))
    linked = await _bounded(store.append(_entry(10_001), None))
    assert linked.seq == i + 1  # every stored record got the next seq, no gap
    result = await store.verify_audit()
    assert result.ok and result.checked == linked.seq, result


async def test_a_batch_that_breaks_its_transaction_does_not_kill_the_writer(store):
    # The job ends the writer's transaction itself: its savepoint release then fails, the
    # whole batch fails (the old writer thread died here and every later call hung).
    with pytest.raises(sqlite3.OperationalError):
        await _bounded(store._call(lambda c: c.execute("ROLLBACK")))
    assert store._writer is not None and store._writer._thread.is_alive()
    linked = await _bounded(store.append(_entry(1), None))
    assert linked.seq == 1 and (await store.verify_audit()).ok


async def test_a_failing_anchor_write_fails_its_callers_and_heals(store, monkeypatch):
    real = store._anchor.write

    def full_disk(_anchor):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store._anchor, "write", full_disk)
    with pytest.raises(OSError, match="No space"):
        await _bounded(store.append(_entry(1), None))
    monkeypatch.setattr(store._anchor, "write", real)
    linked = await _bounded(store.append(_entry(2), None))
    assert linked.seq == 2  # the first record was committed; the anchor catches up
    result = await store.verify_audit()
    assert result.ok and result.checked == 2, result


# -- fail closed: Accounts --


def _record(i: int) -> RequestRecord:
    return RequestRecord(
        request_id=f"r{i}",
        action="chat.completions",
        model="m",
        outcome="ok",
        status=200,
        principal=Principal(tenant="acme", key_id="key_a"),
        input_tokens=3,
        output_tokens=2,
    )


@pytest.fixture
async def accounts(tmp_path: Path):
    clock = Clock()
    acc = Accounts(
        SqliteStore(tmp_path / "accounts.sqlite3", busy_timeout_ms=20, lock_attempts=2),
        KeyHasher(b"faults-test-pepper-0123456789"),
        clock=clock,
        rotation_check_s=3600,
        probe_interval_s=5,
    )
    acc.clock = clock
    await acc.start()
    yield acc
    await acc.close()


def _deny_writes(db: Path) -> None:
    """Tampering that makes every audit insert fail (as a cut chain with its head did)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(
        "CREATE TRIGGER deny BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'denied'); END"
    )
    conn.close()


async def test_failed_writes_refuse_requests_503_until_a_probe_succeeds(accounts, tmp_path):
    accounts.ensure_recording()  # healthy: passes
    await accounts.record(_record(1))
    _deny_writes(tmp_path / "accounts.sqlite3")
    with pytest.raises(sqlite3.IntegrityError, match="denied"):
        await _bounded(accounts.record(_record(2)))
    assert accounts_module.AUDIT_WRITE_FAILING._value.get() == 1
    with pytest.raises(Unavailable) as refused:
        accounts.ensure_recording()
    err = refused.value
    assert err.http_status == 503 and err.code == AUDIT_UNAVAILABLE
    assert "audit and usage" in err.message and "denied" in err.message
    # The refusal's own record is not attempted while failing (it is counted instead).
    await accounts.record(
        RequestRecord(
            "r3", "chat.completions", "m", "refused", 503, reason=f"{AUDIT_UNAVAILABLE}: x"
        )
    )
    # Still failing: a probe (rate-limited by the clock) fails too and nothing changes.
    accounts.clock.now += 5
    with pytest.raises(Unavailable):
        accounts.ensure_recording()
    assert accounts._probe_task is not None
    assert await _bounded(accounts._probe_task) is False
    conn = sqlite3.connect(tmp_path / "accounts.sqlite3", isolation_level=None)
    conn.execute("DROP TRIGGER deny")
    conn.close()
    with pytest.raises(Unavailable):  # within the probe interval: no new probe yet
        accounts.ensure_recording()
    accounts.clock.now += 5
    with pytest.raises(Unavailable):  # this call starts the probe...
        accounts.ensure_recording()
    assert await _bounded(accounts._probe_task) is True
    accounts.ensure_recording()  # ...which brought the service back
    assert accounts_module.AUDIT_WRITE_FAILING._value.get() == 0
    recovered = (await accounts.store.audit("", "", 1))[0]
    assert recovered.action == RECOVERED_ACTION
    assert "4 request(s) refused 503" in recovered.reason and "denied" in recovered.reason
    assert (await accounts.store.verify_audit()).ok


async def test_tail_and_head_deleted_while_running_is_audited_and_reported(accounts, tmp_path):
    """Issue #14 point 18: after this tampering every write failed (UNIQUE constraint failed:
    audit.seq) and requests were served unaudited. Now writes continue after the anchored
    head, so the gap stays visible, and nothing goes unrecorded."""
    for i in range(6):
        await accounts.record(_record(i))
    conn = sqlite3.connect(tmp_path / "accounts.sqlite3", isolation_level=None)
    conn.execute("DELETE FROM audit WHERE seq >= 5")
    conn.execute("DELETE FROM audit_head")
    conn.close()
    # A failed batch makes the writer re-read the head from the database (as before).
    with pytest.raises(sqlite3.OperationalError):
        await _bounded(accounts.store._call(lambda c: c.execute("ROLLBACK")))
    await accounts.record(_record(7))
    accounts.ensure_recording()
    await accounts.close()  # and across a restart
    await accounts.start()
    await accounts.record(_record(8))
    accounts.ensure_recording()
    result = await accounts.store.verify_audit()
    assert not result.ok and result.first_bad_seq == 7 and "5..6 missing" in result.problem
