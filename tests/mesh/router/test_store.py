from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from pg_testkit import BACKENDS, backend

from mesh.crypto import Keyring, Sealer
from mesh.router import audit
from mesh.router.audit import AuditEntry
from mesh.router.content import ContentRecorder
from mesh.router.keys import KeyRecord
from mesh.router.store import _AUDIT_COLS as AUDIT_COLS
from mesh.router.store import MIGRATIONS, SqliteStore, UsageEntry, from_units, to_units
from mesh.router.tenants import Tenant

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_767_225_600.0  # 2026-01-01


def _entry(i: int, tenant: str = "t") -> AuditEntry:
    return AuditEntry(
        time=f"2026-01-01T00:00:{i % 60:02d}.000Z",
        request_id=f"r{i}",
        tenant=tenant,
        key_id="key_a",
        model="m",
        action="chat.completions",
        outcome="ok",
        status=200,
    )


@pytest.fixture
async def sqlite_store(tmp_path):
    s = SqliteStore(tmp_path / "a.sqlite3")
    await s.open()
    yield s
    await s.close()


@pytest.fixture(params=BACKENDS)
async def store(request, tmp_path):
    """The backend-neutral tests run on SQLite and on PostgreSQL (skipped, saying why, when
    127.0.0.1:5432 does not answer); more in test_store_backends.py."""
    with backend(request.param, tmp_path) as kit:
        s = kit.make()
        await s.open()
        yield s
        await s.close()


def test_units_are_exact() -> None:
    for text in ("0.0000009", "0.000021", "12345.678901234567", "0"):
        assert (
            from_units(to_units(Decimal(text)))
            == Decimal(text).quantize(Decimal("1e-12")).normalize()
        )
    assert sum(to_units(Decimal("0.0000009")) for _ in range(10)) == to_units(Decimal("0.000009"))


async def test_schema_is_migrated_once_in_wal_with_full_sync(sqlite_store, tmp_path) -> None:
    store = sqlite_store  # the SQLite file itself is examined
    assert await store._call(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
    conn = sqlite3.connect(tmp_path / "a.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert versions == [(v,) for v in range(1, len(MIGRATIONS) + 1)]
    conn.close()
    await store.close()
    await store.open()  # reopening applies nothing twice
    assert await store._call(
        lambda c: c.execute("SELECT count(*) FROM schema_version").fetchone()[0]
    ) == len(MIGRATIONS)


async def test_tenants_and_keys_round_trip(store) -> None:
    tenant = Tenant(
        "acme", tier="free", rotation_max_age_s=100, model_patterns=("qwen3:*",), created_at=T0
    )
    key = KeyRecord(
        id="key_a",
        tenant="acme",
        key_hash=b"\x01" * 32,
        model_patterns=("qwen3:8b",),
        created_at=T0,
        pending_secret=b"sealed",
    )
    await store.save_tenant(tenant)
    await store.save_keys([key, KeyRecord(id="key_b", tenant="acme", key_hash=b"\x02" * 32)])
    assert await store.load_tenants() == [tenant]
    assert sorted(await store.load_keys(), key=lambda k: k.id)[0] == key
    await store.touch_keys({"key_a": T0 + 5})
    assert {k.id: k.last_used_at for k in await store.load_keys()}["key_a"] == T0 + 5


async def test_usage_sums_per_tenant_model_day_to_the_cent(store) -> None:
    costs = [Decimal("0.0000009"), Decimal("0.000021"), Decimal("0.0040009")]
    for i, cost in enumerate(costs):
        await store.append(
            _entry(i),
            UsageEntry(
                T0 + i * 50_000,
                f"r{i}",
                "t",
                "key_a",
                "m",
                input_tokens=10,
                output_tokens=i,
                cost_eur=cost,
                energy_kwh=Decimal("0.00000015"),
            ),
        )
    await store.append(_entry(9, "u"), UsageEntry(T0, "r9", "u", "key_b", "m", input_tokens=1))
    rows = await store.usage("t", 0, 1e12)
    assert [(r.day, r.requests, r.input_tokens, r.output_tokens) for r in rows] == [
        ("2026-01-01", 2, 20, 1),
        ("2026-01-02", 1, 10, 2),
    ]
    assert sum((r.cost_eur for r in rows), Decimal(0)) == sum(costs)
    assert rows[0].energy_kwh == Decimal("0.0000003")
    assert len(await store.usage("", 0, 1e12)) == 3
    assert await store.usage("t", T0 + 60_000, 1e12) == rows[1:]
    assert (await store.month_spend(T0))["t"] == sum(costs)


async def test_concurrent_appends_form_one_chain(store) -> None:
    chained = await asyncio.gather(*(store.append(_entry(i), None) for i in range(60)))
    assert sorted(e.seq for e in chained) == list(range(1, 61))
    result = await store.verify_audit()
    assert result.ok and result.checked == 60
    assert [e.seq for e in await store.audit("t", "", 10)] == list(range(51, 61))


async def test_tampering_in_the_file_is_found(sqlite_store, tmp_path) -> None:
    store = sqlite_store  # the SQLite file itself is examined
    for i in range(6):
        await store.append(_entry(i), None)
    conn = sqlite3.connect(tmp_path / "a.sqlite3")
    conn.execute("UPDATE audit SET status = 200, outcome = 'refused' WHERE seq = 3")
    conn.commit()
    result = await store.verify_audit()
    assert (result.ok, result.first_bad_seq) == (False, 3) and "edited" in result.problem
    conn.execute("DELETE FROM audit WHERE seq = 3")
    conn.commit()
    result = await store.verify_audit()
    assert result.first_bad_seq == 4 and "deleted" in result.problem
    conn.execute("DELETE FROM audit WHERE seq >= 4")
    conn.commit()
    conn.close()
    assert "deleted" in (await store.verify_audit()).problem


async def test_failing_job_spoils_nothing_else(sqlite_store) -> None:
    store = sqlite_store  # the SQLite file itself is examined

    def boom(conn):
        conn.execute("INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, '')")  # CHECK fails

    results = await asyncio.gather(
        store.append(_entry(1), None),
        store._call(boom),
        store.append(_entry(2), None),
        return_exceptions=True,
    )
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert (await store.verify_audit()).checked == 2


_CHILD = textwrap.dedent("""
    import asyncio, sys
    from decimal import Decimal
    from mesh.router.audit import AuditEntry
    from mesh.router.store import SqliteStore, UsageEntry

    async def main(path):
        store = SqliteStore(path)
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


async def test_sigkill_loses_no_acknowledged_record(tmp_path) -> None:
    path = tmp_path / "kill.sqlite3"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    acknowledged = 0
    assert child.stdout is not None
    while acknowledged < 40:
        line = child.stdout.readline()
        assert line, "child died before acknowledging 40 records"
        acknowledged = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    store = SqliteStore(path)
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


def _legacy_db(path: Path, n: int) -> None:
    """A database from before the keyed chain: schema v2, plain SHA-256 links, no anchor."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, statements in enumerate(MIGRATIONS[:2], start=1):
        for sql in statements:
            conn.execute(sql)
        conn.execute("INSERT INTO schema_version VALUES (?)", (version,))
    prev = audit.GENESIS
    for i in range(1, n + 1):
        e = audit.chain(_entry(i), i, prev)  # no key: SHA-256
        conn.execute(
            f"INSERT INTO audit ({', '.join(AUDIT_COLS)}) VALUES ({', '.join('?' * 16)})",
            tuple(getattr(e, c) for c in AUDIT_COLS),
        )
        prev = e.hash
    conn.execute("INSERT INTO audit_head VALUES (1, ?, ?)", (n, prev))
    conn.close()


async def test_an_unkeyed_chain_is_verified_as_before_and_continued_keyed(tmp_path) -> None:
    path = tmp_path / "old.sqlite3"
    _legacy_db(path, 3)
    store = SqliteStore(path, audit_key=b"k" * 32)
    await store.open()
    try:
        await store.append(_entry(5), None)
        records = await store.audit("", "", 10)
        note = records[3]  # the first keyed record says where the keyed part starts
        assert (note.seq, note.action) == (4, audit.ANCHOR_ACTION)
        assert "keyed (HMAC) from seq 4; seq 1..3 stay SHA-256" in note.reason
        assert records[4].hash == audit.entry_hash(records[3].hash, records[4], b"k" * 32)
        result = await store.verify_audit()
        assert result.ok and result.checked == 5, result
        conn = sqlite3.connect(path, isolation_level=None)
        # Moving the boundary (to pass keyed records off as plain SHA-256 ones) shows.
        conn.execute("UPDATE audit_keying SET keyed_from = 99")
        bad = await store.verify_audit()
        assert not bad.ok and "keying" in bad.problem
        conn.execute("UPDATE audit_keying SET keyed_from = 4")
        conn.execute("UPDATE audit SET model = 'n' WHERE seq = 2")  # the old part as before
        bad = await store.verify_audit()
        assert not bad.ok and bad.first_bad_seq == 2 and bad.problem.startswith("edited")
        conn.close()
    finally:
        await store.close()


async def test_another_audit_key_is_refused_at_start(tmp_path) -> None:
    store = SqliteStore(tmp_path / "a.sqlite3", audit_key=b"a" * 32)
    await store.open()
    await store.close()
    with pytest.raises(RuntimeError, match="LLMAAS_AUDIT_KEY"):
        await SqliteStore(tmp_path / "a.sqlite3", audit_key=b"b" * 32).open()


async def test_state_files_are_private(tmp_path) -> None:
    run = tmp_path / "run"  # created by the store
    db = run / "accounts.sqlite3"
    store = SqliteStore(db)
    await store.open()
    try:
        await store.append(_entry(1), None)
        mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
        assert mode(run) == 0o700 and mode(run / "secrets") == 0o700
        for f in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), store.anchor_path):
            assert mode(f) == 0o600, f
        assert mode(run / "secrets" / "audit-key") == 0o600
    finally:
        await store.close()
    os.chmod(db, 0o644)  # a file from before this change: tightened at the next start
    store = SqliteStore(db)
    await store.open()
    await store.close()
    assert stat.S_IMODE(os.stat(db).st_mode) == 0o600


async def test_the_content_log_is_private(tmp_path) -> None:
    keys = tmp_path / "run" / "secrets" / "content-keys.json"
    recorder = ContentRecorder(
        tmp_path / "run" / "content.sqlite3", lambda: Sealer(Keyring.create(keys))
    )
    await recorder.record("acme", "r1", "prompt", "answer")
    recorder.close()
    assert stat.S_IMODE(os.stat(tmp_path / "run" / "content.sqlite3").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == 0o700
