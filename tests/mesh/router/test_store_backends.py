"""The Store protocol on both backends: the same calls give the same results on SQLite
(the embedded default) and PostgreSQL (LLMAAS_DATABASE_URL), tampering shows on both, and
one scenario run on both gives identical answers, audit hashes included. The PostgreSQL
cases skip, saying why, when 127.0.0.1:5432 does not answer."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, replace
from decimal import Decimal

import pytest
from pg_testkit import AUDIT_KEY, BACKENDS, Backend, backend, sql, url_of

from mesh.crypto import Keyring, Sealer
from mesh.router import audit
from mesh.router.audit import AuditEntry
from mesh.router.content import ContentRecorder
from mesh.router.keys import KeyRecord
from mesh.router.store import Store, UsageEntry
from mesh.router.tenants import Tenant

T0 = 1_767_225_600.0  # 2026-01-01
DAY = 86400.0


def _entry(i: int, tenant: str = "t", ts: float = T0) -> AuditEntry:
    return AuditEntry(
        time=audit.iso_time(ts + i),
        request_id=f"r{i}",
        tenant=tenant,
        key_id=f"key_{tenant}",
        model="m",
        action="chat.completions",
        outcome="ok",
        status=200,
        input_tokens=i,
        latency_ms=1.5,
    )


def _usage(i: int, tenant: str = "t", ts: float = T0, model: str = "m") -> UsageEntry:
    return UsageEntry(
        ts + i,
        f"r{i}",
        tenant,
        f"key_{tenant}",
        model,
        input_tokens=10 + i,
        output_tokens=i,
        reasoning_tokens=1,
        system_tokens=2,
        cost_eur=Decimal("0.0000009") * (i + 1),
        energy_kwh=Decimal("0.00000015"),
    )


@pytest.fixture(params=BACKENDS)
async def kit(request, tmp_path):
    with backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
async def store(kit: Backend):
    s = kit.make()
    await s.open()
    yield s
    await s.close()


async def test_tenants_and_keys_round_trip_and_upsert(store: Store) -> None:
    tenant = Tenant("acme", tier="free", retention_days=3, model_patterns=("q:*",), created_at=T0)
    await store.save_tenant(tenant)
    await store.save_tenant(Tenant("acme", tier="pro", content_logging=True, created_at=T0))
    await store.save_tenant(Tenant("beta", created_at=T0))
    tenants = sorted(await store.load_tenants(), key=lambda t: t.name)
    assert [(t.name, t.tier, t.content_logging) for t in tenants] == [
        ("acme", "pro", True),
        ("beta", "standard", False),
    ]
    key = KeyRecord(
        id="key_a",
        tenant="acme",
        key_hash=b"\x01" * 32,
        model_patterns=("q:8b",),
        admin=True,
        created_at=T0,
        pending_secret=b"sealed\x00bytes",
    )
    await store.save_keys([key, KeyRecord(id="key_b", tenant="acme", key_hash=b"\x02" * 32)])
    await store.save_keys(
        [KeyRecord(id="key_b", tenant="acme", key_hash=b"\x02" * 32, revoked_at=T0)]
    )
    keys = {k.id: k for k in await store.load_keys()}
    assert keys["key_a"] == key and keys["key_b"].revoked_at == T0
    assert keys["key_b"].model_patterns is None and keys["key_b"].pending_secret is None
    await store.touch_keys({"key_a": T0 + 5})
    await store.touch_keys({"key_a": T0 + 1})  # never moves back
    assert {k.id: k.last_used_at for k in await store.load_keys()}["key_a"] == T0 + 5


async def test_usage_and_month_spend(store: Store) -> None:
    for i in range(3):
        await store.append(_entry(i), _usage(i, ts=T0 + i * DAY / 2))
    await store.append(_entry(9, "u"), _usage(9, "u", model="n"))
    await store.append(_entry(10, "u"), None)  # audited, not billed
    rows = await store.usage("t", 0, 1e12)
    assert [(r.day, r.requests, r.input_tokens, r.output_tokens) for r in rows] == [
        ("2026-01-01", 2, 21, 1),
        ("2026-01-02", 1, 12, 2),
    ]
    assert sum((r.cost_eur for r in rows), Decimal(0)) == Decimal("0.0000054")
    assert rows[0].energy_kwh == Decimal("0.0000003") and rows[0].reasoning_tokens == 2
    everyone = await store.usage("", 0, 1e12)
    assert [(r.tenant, r.model, r.day) for r in everyone] == [
        ("t", "m", "2026-01-01"),
        ("u", "n", "2026-01-01"),
        ("t", "m", "2026-01-02"),
    ]
    assert await store.usage("t", T0 + DAY, 1e12) == rows[1:]
    assert await store.month_spend(T0) == {"t": Decimal("0.0000054"), "u": Decimal("0.000009")}
    assert await store.month_spend(T0 + 2 * DAY) == {}


async def test_audit_listing_and_pages(store: Store) -> None:
    for i in range(1, 11):
        await store.append(_entry(i, "t" if i % 2 else "u"), None)
    last3 = await store.audit("t", "", 3)
    assert [e.seq for e in last3] == [5, 7, 9]
    assert [e.seq for e in await store.audit("", audit.iso_time(T0 + 8), 10)] == [8, 9, 10]
    page = await store.audit_page("", "", "", 0, 4)
    assert [e.seq for e in page] == [1, 2, 3, 4]
    page = await store.audit_page("u", "", audit.iso_time(T0 + 9), 4, 100)
    assert [e.seq for e in page] == [6, 8]
    first = page[0]
    assert first.hash == audit.entry_hash(first.prev_hash, first, AUDIT_KEY)
    assert (first.latency_ms, first.input_tokens, first.tenant) == (1.5, 6, "u")


async def test_retention_rolls_up_usage_and_cuts_the_chain_start(store: Store) -> None:
    for i in range(4):  # old "t" records, then a new one, then one of "keep"
        await store.append(_entry(i), _usage(i))
    await store.append(_entry(4, ts=T0 + 40 * DAY), _usage(4, ts=T0 + 40 * DAY))
    await store.append(_entry(5, "keep"), _usage(5, "keep"))
    now = T0 + 41 * DAY
    cutoffs = {"t": now - 30 * DAY, "keep": None}
    result = await store.purge_expired(cutoffs, now - 365 * DAY, now, content_purged=2)
    assert result is not None
    assert (result.audit_records, result.usage_rows, result.content_records) == (4, 4, 2)
    assert result.checkpoint[0] == 4 and result.event.seq == 7
    assert "audit_records=4 usage_rows=4 content_records=2" in result.event.reason
    rows = await store.usage("t", 0, 1e12)
    assert [(r.day, r.requests, r.input_tokens) for r in rows] == [
        ("2026-01-01", 4, 46),
        ("2026-02-10", 1, 14),
    ]
    assert await store.month_spend(T0) == {
        "t": Decimal("0.0000009") * 15,
        "keep": Decimal("0.0000009") * 6,
    }
    verified = await store.verify_audit()
    assert verified.ok and (verified.checked, verified.start_seq) == (3, 4), verified
    assert await store.purge_expired(cutoffs, now - 365 * DAY, now) is None


async def test_tampering_shows_on_both_backends(kit: Backend, store: Store) -> None:
    for i in range(6):
        await store.append(_entry(i), None)
    assert (await store.verify_audit()).ok
    kit.tamper("UPDATE audit SET outcome = 'refused' WHERE seq = 3")
    bad = await store.verify_audit()
    assert (bad.ok, bad.first_bad_seq) == (False, 3) and bad.problem.startswith("edited")
    kit.tamper("DELETE FROM audit WHERE seq = 3")
    bad = await store.verify_audit()
    assert bad.first_bad_seq == 4 and bad.problem.startswith("deleted")


async def test_a_cut_tail_with_its_head_row_shows_against_the_anchor(kit, store) -> None:
    for i in range(6):
        await store.append(_entry(i), None)
    kit.tamper("DELETE FROM audit WHERE seq >= 5")
    kit.tamper("UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit WHERE seq = 4)")
    bad = await store.verify_audit()
    assert not bad.ok and "anchor" in bad.problem and "seq 6" in bad.problem, bad


async def test_reopen_keeps_everything_and_another_key_is_refused(kit: Backend) -> None:
    store = kit.make()
    await store.open()
    await store.append(_entry(1), _usage(1))
    await store.close()
    again = kit.make()
    await again.open()  # migrations already applied: nothing twice
    try:
        await again.append(_entry(2), None)
        result = await again.verify_audit()
        assert result.ok and result.checked == 2
    finally:
        await again.close()
    with pytest.raises(RuntimeError, match="LLMAAS_AUDIT_KEY"):
        await kit.make(b"x" * 32).open()


async def _scenario(store: Store) -> dict:
    """Everything a router asks a store, on fixed inputs."""
    await store.save_tenant(Tenant("t", retention_days=30, created_at=T0))
    for i in range(8):
        await store.append(_entry(i, "tu"[i % 2]), _usage(i, "tu"[i % 2], ts=T0 + i * DAY))
    await store.append(_entry(20), None)
    now = T0 + 40 * DAY
    purge = await store.purge_expired({"t": now - 35 * DAY, "u": None}, None, now)
    await store.append(_entry(21, "u", ts=now), _usage(21, "u", ts=now))
    return {
        "tenants": await store.load_tenants(),
        "usage": await store.usage("", 0, 1e12),
        "usage_t": await store.usage("t", T0 + DAY, T0 + 30 * DAY),
        "spend": await store.month_spend(T0 + DAY),
        "audit": [asdict(e) for e in await store.audit("", "", 100)],
        "page": [asdict(e) for e in await store.audit_page("u", "", "", 2, 3)],
        "purge": purge,
        "verify": await store.verify_audit(),
    }


async def test_both_backends_give_identical_results(tmp_path) -> None:
    results = []
    for kind in BACKENDS:
        with backend(kind, tmp_path / kind) as b:
            (tmp_path / kind).mkdir()
            store = b.make()
            await store.open()
            try:
                results.append(await _scenario(store))
            finally:
                await store.close()
    sqlite, pg = results
    assert sqlite["verify"].ok and sqlite["purge"] is not None
    for name in sqlite:
        assert pg[name] == sqlite[name], name


async def test_the_content_log_seals_what_it_stores(kit: Backend, store: Store, tmp_path) -> None:
    """The content log lives in the accounts database with PostgreSQL (a file with SQLite);
    either way only ciphertext is stored, and retention deletes it."""
    ring = tmp_path / "keys.json"
    url = "" if kit.kind == "sqlite" else url_of(kit.dbname)
    content = ContentRecorder(
        tmp_path / "content.sqlite3", lambda: Sealer(Keyring.create(ring)), url
    )
    try:
        await content.record("acme", "r1", "the secret prompt", "the secret answer")
        await content.record("beta", "r1", "other prompt", "other answer")
        assert await content.read("acme", "r1") == ("the secret prompt", "the secret answer")
        assert await content.read("beta", "r2") is None
        if kit.kind == "sqlite":
            raw = (tmp_path / "content.sqlite3").read_bytes()
        else:
            raw = b"".join(
                bytes(p) + bytes(a)
                for p, a in sql(kit.dbname, "SELECT prompt, answer FROM content_log")
            )
        assert b"secret" not in raw and b"other" not in raw
        assert await content.purge("acme", 0) == 1
        assert await content.read("acme", "r1") is None
        assert await content.read("beta", "r1") == ("other prompt", "other answer")
    finally:
        content.close()


async def test_nul_characters_never_break_a_call(kit: Backend, store: Store, tmp_path) -> None:
    """PostgreSQL text holds no NUL (stored as U+FFFD there): every call still works, and a
    lookup with the same string finds what was stored with it."""
    odd = "a\x00b"
    await store.save_tenant(Tenant(odd, created_at=T0))
    assert len(await store.load_tenants()) == 1
    await store.append(_entry(1, odd), _usage(1, odd))
    assert [r.requests for r in await store.usage(odd, 0, 1e12)] == [1]
    assert [e.seq for e in await store.audit(odd, "", 5)] == [1]
    assert [e.seq for e in await store.audit_page(odd, "", "", 0, 5)] == [1]
    assert (await store.verify_audit()).ok
    url = "" if kit.kind == "sqlite" else url_of(kit.dbname)
    content = ContentRecorder(
        tmp_path / "content.sqlite3", lambda: Sealer(Keyring.create(tmp_path / "k.json")), url
    )
    try:
        await content.record(odd, "r\x001", "p", "a")
        assert await content.read(odd, "r\x001") == ("p", "a")
        assert await content.purge(odd, 0) == 1
    finally:
        content.close()


async def test_one_key_hash_is_one_row_the_last_saved(store: Store) -> None:
    """Two routers bootstrapping the same env key at once give it two ids: one row stays."""
    first = KeyRecord(id="key_1", tenant="admin", key_hash=b"\x07" * 32, admin=True)
    await store.save_keys([first])
    await store.save_keys([KeyRecord(id="key_2", tenant="admin", key_hash=b"\x07" * 32)])
    assert [(k.id, k.admin) for k in await store.load_keys()] == [("key_2", False)]


async def test_a_chain_relinked_without_the_key_shows(kit: Backend, store: Store) -> None:
    """Someone with write access to the database, not to the audit key, edits a record and
    re-links the whole chain (plain SHA-256) and its head row."""
    for i in range(5):
        await store.append(_entry(i), None)
    prev = audit.GENESIS
    for e in await store.audit_page("", "", "", 0, 100):
        forged = replace(e, model="forged" if e.seq == 2 else e.model, prev_hash=prev, hash="")
        link = hashlib.sha256(prev.encode() + audit.canonical(forged)).hexdigest()
        kit.tamper(
            "UPDATE audit SET model = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (forged.model, prev, link, e.seq),
        )
        prev = link
    kit.tamper("UPDATE audit_head SET hash = ?", (prev,))
    bad = await store.verify_audit()
    assert not bad.ok and bad.first_bad_seq == 1 and bad.problem.startswith("edited"), bad


async def test_a_moved_retention_checkpoint_shows(kit: Backend, store: Store) -> None:
    for i in range(6):
        await store.append(_entry(i), None)
    now = T0 + 40 * DAY
    result = await store.purge_expired({"t": T0 + 3}, None, now)  # seq 1..3 expire
    assert result is not None and result.checkpoint[0] == 3
    assert (await store.verify_audit()).ok
    (fourth,) = await store.audit_page("", "", "", 3, 1)
    kit.tamper("UPDATE audit_checkpoint SET seq = 4, hash = ?", (fourth.hash,))
    kit.tamper("DELETE FROM audit WHERE seq = 4")  # one more record hidden
    bad = await store.verify_audit()
    assert not bad.ok and "checkpoint" in bad.problem, bad
