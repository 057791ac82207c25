"""`llmaas-admin migrate` (the real CLI): an embedded SQLite store, with a retention
checkpoint, keys, usage and sealed content, moves into PostgreSQL with its audit chain
intact; the PostgreSQL store then answers exactly as the SQLite one did, continues the
chain, and verifies. A broken source chain or a non-empty target migrates nothing.
Skips, saying why, when 127.0.0.1:5432 does not answer."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path

import pytest
from pg_testkit import scratch_database, sql, url_of

from mesh.crypto import Keyring, Sealer
from mesh.router import audit
from mesh.router.audit import AuditEntry
from mesh.router.content import ContentRecorder
from mesh.router.keys import KeyRecord
from mesh.router.pg.store import PgStore
from mesh.router.store import SqliteStore, Store, UsageEntry
from mesh.router.tenants import Tenant
from tools.ops.admin import cli

KEY = "migrate-test-audit-key-0123456789"
T0 = 1_767_225_600.0
DAY = 86400.0


def _entry(i: int, tenant: str) -> AuditEntry:
    return AuditEntry(
        time=audit.iso_time(T0 + i * DAY),
        request_id=f"r{i}",
        tenant=tenant,
        key_id=f"key_{tenant}",
        model="m",
        action="chat.completions",
        outcome="ok",
        status=200,
        input_tokens=i,
        latency_ms=2.25,
    )


async def _answers(store: Store) -> dict:
    return {
        "tenants": sorted(await store.load_tenants(), key=lambda t: t.name),
        "keys": sorted(await store.load_keys(), key=lambda k: k.id),
        "usage": await store.usage("", 0, 1e12),
        "spend": await store.month_spend(T0),
        "audit": [asdict(e) for e in await store.audit("", "", 1000)],
        "verify": await store.verify_audit(),
    }


@pytest.fixture
async def source(tmp_path: Path, monkeypatch):
    """A SQLite store as a router leaves it: records, a purge, content; and its answers."""
    monkeypatch.setenv("LLMAAS_AUDIT_KEY", KEY)
    monkeypatch.setenv("LLMAAS_RUN_DIR", str(tmp_path / "run"))
    store = SqliteStore(tmp_path / "accounts.sqlite3", audit_key=KEY.encode())
    await store.open()
    await store.save_tenant(Tenant("acme", retention_days=10, content_logging=True, created_at=T0))
    await store.save_tenant(Tenant("beta", tier="free", created_at=T0))
    await store.save_keys(
        [
            KeyRecord(id="key_acme", tenant="acme", key_hash=b"\x01" * 32, created_at=T0),
            KeyRecord(id="key_beta", tenant="beta", key_hash=b"\x02" * 32, pending_secret=b"s"),
        ]
    )
    for i in range(12):
        tenant = "beta" if i % 3 == 2 else "acme"
        usage = UsageEntry(T0 + i * DAY, f"r{i}", tenant, f"key_{tenant}", "m", 5, i)
        await store.append(_entry(i, tenant), usage if i != 4 else None)
    await store.append(
        _entry(0, "acme"), UsageEntry(T0, "x", "acme", "k", "m", cost_eur=Decimal("0.25"))
    )
    now = T0 + 14 * DAY
    assert await store.purge_expired({"acme": now - 10 * DAY, "beta": None}, None, now)
    answers = await _answers(store)
    await store.close()
    content = ContentRecorder(
        tmp_path / "content.sqlite3", lambda: Sealer(Keyring.create(tmp_path / "keys.json"))
    )
    await content.record("acme", "r1", "a prompt", "an answer")
    content.close()
    return tmp_path, answers


async def _migrate(tmp_path: Path, url: str) -> int:
    """The CLI as an operator runs it (its own event loop, so off this test's loop)."""
    argv = [
        "migrate",
        "--from",
        str(tmp_path / "accounts.sqlite3"),
        "--content-from",
        str(tmp_path / "content.sqlite3"),
        "--to",
        url,
    ]
    return await asyncio.to_thread(cli.main, argv)


async def test_migrate_moves_everything_with_the_chain_intact(source, capsys) -> None:
    tmp_path, before = source
    assert before["verify"].ok and before["verify"].start_seq > 0  # a checkpoint to carry
    with scratch_database() as db:
        assert await _migrate(tmp_path, url_of(db)) == 0
        out = capsys.readouterr().out
        assert "2 tenants, 2 keys" in out and "1 content records" in out, out
        assert f"{len(before['audit'])} audit records" in out
        store = PgStore(url_of(db), audit_key=KEY.encode())
        await store.open()
        try:
            after = await _answers(store)
            for name in before:
                assert after[name] == before[name], name
            linked = await store.append(_entry(99, "beta"), None)  # the chain goes on
            assert linked.prev_hash == before["audit"][-1]["hash"]
            assert (await store.verify_audit()).ok
        finally:
            await store.close()
        content = ContentRecorder(
            tmp_path / "unused",
            lambda: Sealer(Keyring.load(tmp_path / "keys.json")),
            url_of(db),
        )
        try:
            assert await content.read("acme", "r1") == ("a prompt", "an answer")
        finally:
            content.close()
        # A second run finds records there and changes nothing.
        count = sql(db, "SELECT count(*) FROM audit")
        assert await _migrate(tmp_path, url_of(db)) == 1
        assert "already holds records" in capsys.readouterr().err
        assert sql(db, "SELECT count(*) FROM audit") == count


async def test_a_source_chain_that_does_not_verify_is_not_migrated(source, capsys) -> None:
    tmp_path, _before = source
    conn = sqlite3.connect(tmp_path / "accounts.sqlite3", isolation_level=None)
    conn.execute("UPDATE audit SET status = 500 WHERE seq = (SELECT max(seq) FROM audit) - 1")
    conn.close()
    with scratch_database() as db:
        assert await _migrate(tmp_path, url_of(db)) == 1
        err = capsys.readouterr().err
        assert "does not verify" in err and "edited" in err and "nothing migrated" in err
        assert sql(db, "SELECT to_regclass('audit')") == [(None,)]
