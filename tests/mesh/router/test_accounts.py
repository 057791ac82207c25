from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import replace
from decimal import Decimal

import pytest
from accounts_testkit import FakeClock, make_accounts
from pg_testkit import BACKENDS, backend, sql

from mesh.errors import NotFound, PermissionDenied, QuotaExceeded, RateLimited, Unauthenticated
from mesh.router.access import RequestRecord, check_model_allowed
from mesh.router.accounts import Bootstrap, build_access
from mesh.router.tenants import DEFAULT_TIERS, Tenant


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=BACKENDS)
async def kit(request, tmp_path):
    """The store under Accounts: SQLite, and PostgreSQL when 127.0.0.1:5432 answers."""
    with backend(request.param, tmp_path) as b:
        yield b


@pytest.fixture
async def accounts(tmp_path, clock, kit):
    tiers = {
        **DEFAULT_TIERS,
        "free": replace(
            DEFAULT_TIERS["free"], requests_per_minute=5, monthly_budget_eur=Decimal("0.001")
        ),
    }
    acc = make_accounts(tmp_path, clock, tiers, store=kit.make())
    await acc.start()
    await acc.directory.save_tenant(Tenant("acme", tier="free", created_at=clock()))
    yield acc
    await acc.close()


def _stored_bytes(kit, tmp_path) -> bytes:
    """Everything the store holds, as bytes (files for SQLite, a table dump for PostgreSQL)."""
    if kit.kind == "sqlite":
        return b"".join(p.read_bytes() for p in tmp_path.glob(f"{kit.path.name}*"))
    rows = sql(kit.dbname, "SELECT t::text FROM (SELECT * FROM api_keys) t")
    rows += sql(kit.dbname, "SELECT t::text FROM (SELECT * FROM audit) t")
    return "\n".join(r[0] for r in rows).encode()


def _record(
    p, *, outcome="ok", status=200, tokens=(10, 5), cost="0.000029", req="r1"
) -> RequestRecord:
    return RequestRecord(
        req,
        "chat.completions",
        "qwen3:8b",
        outcome,
        status,
        principal=p,
        key_id=p.key_id if p else "",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_eur=Decimal(cost),
        latency_ms=12.3456,
    )


async def test_valid_unknown_revoked_and_expired_keys(accounts, clock) -> None:
    key, secret = await accounts.directory.create_key("acme", None, clock() + 100, False)
    principal = await accounts.authenticate(secret)
    assert (principal.tenant, principal.key_id, principal.tier, principal.admin) == (
        "acme",
        key.id,
        "free",
        False,
    )
    for bad in ("", "sk-nope", secret[:-1] + "x"):
        with pytest.raises(Unauthenticated, match="Incorrect API key"):
            await accounts.authenticate(bad)
    clock.advance(100)
    with pytest.raises(Unauthenticated, match="expired"):
        await accounts.authenticate(secret)
    _key2, secret2 = await accounts.directory.create_key("acme", None, 0.0, False)
    await accounts.authenticate(secret2)
    await accounts.directory.revoke(_key2.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        await accounts.authenticate(secret2)


async def test_model_permissions_per_key(accounts) -> None:
    _key, secret = await accounts.directory.create_key(
        "acme", ("qwen3:*", "smollm2:135m"), 0.0, False
    )
    principal = await accounts.authenticate(secret)
    check_model_allowed(principal, "qwen3:8b")
    check_model_allowed(principal, "smollm2:135m")
    with pytest.raises(PermissionDenied) as denied:
        check_model_allowed(principal, "llama3.3:70b")
    assert denied.value.code == "model_not_allowed" and denied.value.http_status == 403


async def test_tier_limits_and_budget_through_accounts(accounts) -> None:
    _key, secret = await accounts.directory.create_key("acme", None, 0.0, False)
    p = await accounts.authenticate(secret)
    for i in range(5):
        admission = await accounts.admit(p, "qwen3:8b", 50)
        assert admission.headers["x-ratelimit-remaining-requests"] == str(4 - i)
        await accounts.release(p, admission, _record(p))
    with pytest.raises(RateLimited) as refused:
        await accounts.admit(p, "qwen3:8b", 50)
    assert refused.value.retry_after == pytest.approx(60.0)
    for i in range(35):  # 35 x 0.000029 EUR passes the 0.001 EUR budget
        await accounts.record(_record(p, req=f"r{i}"))
    with pytest.raises(QuotaExceeded):
        await accounts.admit(p, "qwen3:8b", 50)


async def test_records_make_usage_and_a_verified_audit_trail(accounts, clock) -> None:
    _key, secret = await accounts.directory.create_key("acme", None, 0.0, False)
    p = await accounts.authenticate(secret)
    await accounts.record(_record(p, tokens=(7, 3), cost="0.0000183"))
    await accounts.record(
        _record(p, outcome="cancelled", status=499, tokens=(7, 1), cost="0.0000103")
    )
    await accounts.record(_record(None, outcome="refused", status=401, tokens=(0, 0), cost="0"))
    await accounts.record(_record(p, outcome="refused", status=429, tokens=(0, 0), cost="0"))
    rows = await accounts.store.usage("acme", 0, 1e12)
    assert [(r.requests, r.input_tokens, r.output_tokens, r.cost_eur) for r in rows] == [
        (2, 14, 4, Decimal("0.0000286"))
    ]
    audit = await accounts.store.audit("", "", 100)
    assert [(e.tenant, e.outcome, e.status) for e in audit] == [
        ("acme", "ok", 200),
        ("acme", "cancelled", 499),
        ("", "refused", 401),
        ("acme", "refused", 429),
    ]
    assert audit[0].latency_ms == 12.346
    assert (await accounts.store.verify_audit()).ok


async def test_automatic_rotation_with_overlap(accounts, clock, tmp_path, kit) -> None:
    tenant = accounts.directory.tenant("acme")
    await accounts.directory.save_tenant(
        replace(tenant, rotation_max_age_s=100, rotation_overlap_s=20)
    )
    old, old_secret = await accounts.directory.create_key("acme", ("qwen3:*",), 0.0, False)
    clock.advance(79)
    assert await accounts.rotate_due_keys() == 0
    clock.advance(1)
    assert await accounts.rotate_due_keys() == 1  # the periodic task's job
    old = accounts.directory.key(old.id)
    new, new_secret = await accounts.directory.take_successor(old.id)
    assert new.id == old.successor_id and new.model_patterns == ("qwen3:*",)
    with pytest.raises(NotFound, match="already retrieved"):
        await accounts.directory.take_successor(old.id)
    assert (await accounts.authenticate(old_secret)).key_id == old.id  # overlap: both work
    assert (await accounts.authenticate(new_secret)).key_id == new.id
    clock.advance(20)
    with pytest.raises(Unauthenticated, match="expired"):
        await accounts.authenticate(old_secret)
    assert (await accounts.authenticate(new_secret)).key_id == new.id
    rotations = [e for e in await accounts.store.audit("acme", "", 100) if e.action == "key.rotate"]
    assert len(rotations) == 1 and new.id in rotations[0].reason
    await accounts.close()
    stored = _stored_bytes(kit, tmp_path)
    assert old.id.encode() in stored  # the dump holds the keys (this check can fail)
    for secret in (old_secret, new_secret):
        assert secret.encode() not in stored and secret.split("-", 3)[3].encode() not in stored


async def test_rotation_also_happens_on_use(accounts, clock) -> None:
    tenant = accounts.directory.tenant("acme")
    await accounts.directory.save_tenant(
        replace(tenant, rotation_max_age_s=100, rotation_overlap_s=20)
    )
    old, secret = await accounts.directory.create_key("acme", None, 0.0, False)
    clock.advance(85)
    await accounts.authenticate(secret)
    successor_id = accounts.directory.key(old.id).successor_id
    assert successor_id and accounts.directory.key(old.id).expires_at == clock() + 20
    assert await accounts.rotate_due_keys() == 0  # not twice


async def test_manual_rotation_returns_the_secret_at_once(accounts, clock) -> None:
    old, old_secret = await accounts.directory.create_key("acme", None, 0.0, False)
    _old, new, secret = await accounts.rotate_key(old.id, 30, None)
    assert (await accounts.authenticate(secret)).key_id == new.id
    clock.advance(31)
    with pytest.raises(Unauthenticated):
        await accounts.authenticate(old_secret)
    with pytest.raises(NotFound):
        await accounts.directory.take_successor(old.id)  # shown once, in the rotate response


async def test_env_keys_exist_with_exactly_their_value(tmp_path, clock) -> None:
    boot = Bootstrap(admin_key="admin-secret-value", dev_key="dev-secret-value", dev_tier="premium")
    for _ in range(2):  # a restart upserts, never duplicates
        acc = make_accounts(tmp_path, clock, bootstrap=boot)
        admin = await acc.authenticate("admin-secret-value")
        dev = await acc.authenticate("dev-secret-value")
        assert (admin.tenant, admin.admin) == ("admin", True)
        assert (dev.tenant, dev.admin, dev.tier, dev.model_patterns) == (
            "dev",
            False,
            "premium",
            ("*",),
        )
        assert len(acc.directory.keys_of("dev")) == 1
        await acc.close()


def test_build_access_reads_config_and_env(tmp_path) -> None:
    environ = {"LLMAAS_RUN_DIR": str(tmp_path), "LLMAAS_DEV_KEY": "d" * 20}
    acc = build_access({"tiers": {"free": {"requests_per_minute": 5}}}, environ)
    assert acc.tier("free").requests_per_minute == 5 and acc.tier("nope").name == "standard"
    assert stat.S_IMODE(os.stat(tmp_path / "secrets" / "pepper").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "secrets" / "audit-key").st_mode) == 0o600
    keyed = build_access({}, {**environ, "LLMAAS_AUDIT_KEY": "a" * 32})
    assert keyed.store.audit_key == b"a" * 32
    with pytest.raises(ValueError, match="LLMAAS_DEV_TIER"):
        build_access({}, {**environ, "LLMAAS_DEV_TIER": "gold"})


async def test_an_admins_revocation_or_expiry_of_env_keys_survives_restarts(
    tmp_path, clock
) -> None:
    """Issue #14 point 11: LLMAAS_ADMIN_KEY / LLMAAS_DEV_KEY came back unrevoked and
    non-expiring on every restart, whatever an admin did to them."""
    boot = Bootstrap(admin_key="admin-secret-value", dev_key="dev-secret-value")
    acc = make_accounts(tmp_path, clock, bootstrap=boot)
    admin = await acc.authenticate("admin-secret-value")
    dev = await acc.authenticate("dev-secret-value")
    await acc.directory.revoke(dev.key_id)
    old, _new, _secret = await acc.rotate_key(admin.key_id, 600, None)  # expires in 600 s
    await acc.close()
    for _ in range(2):
        acc = make_accounts(tmp_path, clock, bootstrap=boot)
        with pytest.raises(Unauthenticated, match="revoked"):
            await acc.authenticate("dev-secret-value")
        assert (await acc.authenticate("admin-secret-value")).admin  # still in its overlap
        assert acc.directory.key(admin.key_id).expires_at == old.expires_at
        await acc.close()
    clock.advance(601)
    acc = make_accounts(tmp_path, clock, bootstrap=boot)
    with pytest.raises(Unauthenticated, match="expired"):
        await acc.authenticate("admin-secret-value")
    await acc.close()


async def test_a_thousand_unauthenticated_1mb_refusals_add_less_than_1mb(tmp_path, clock) -> None:
    """Issue #14 point 5: 60 refusals with a 1 MB `model` added 60 MB. Fields are clipped and
    refusals past 60 a minute per reason are counted into one aggregate record."""
    acc = make_accounts(tmp_path, clock)
    await acc.start()
    db = tmp_path / "accounts.sqlite3"

    async def stored_bytes() -> int:  # the database's content, WAL folded in
        await acc.store._call(lambda c: None)
        conn = sqlite3.connect(db, isolation_level=None)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_count").fetchone()[0] * 4096
        conn.close()
        return size

    before = await stored_bytes()
    huge = "m" * 1_000_000
    for i in range(1000):
        await acc.record(
            RequestRecord(
                request_id=f"{i}{huge}",
                action="chat.completions",
                model=huge,
                outcome="refused",
                status=401,
                key_id=huge,
                reason="invalid_api_key: Incorrect API key provided.",
                filter_verdict=huge,
            )
        )
        if i == 499:
            clock.advance(60)  # a second minute: the first one's aggregate is written
    await acc.close()  # writes the last minute's aggregate
    await acc.start()
    grown = await stored_bytes() - before
    print(f"1000 unauthenticated 1 MB refusals: database grew by {grown} bytes")
    assert grown < 1_000_000
    records = await acc.store.audit("", "", 1000)
    single = [r for r in records if r.action == "chat.completions"]
    aggregates = [r for r in records if r.action == "refusals.aggregate"]
    assert len(single) == 120  # 60 a minute, two minutes
    assert all(len(r.model) < 300 and r.model.endswith("…[+999744 chars]") for r in single)
    assert [r.reason.split()[0] for r in aggregates] == ["count=440", "count=440"]
    assert all(r.status == 401 and "invalid_api_key" in r.reason for r in aggregates)
    assert (await acc.store.verify_audit()).ok
    await acc.close()


async def test_unauthenticated_admin_refusals_are_bounded_too(tmp_path, clock) -> None:
    acc = make_accounts(tmp_path, clock)
    await acc.start()
    for _ in range(70):
        await acc.audit_event(
            None,
            "admin.ListTenants",
            tenant="",
            outcome="refused",
            status=401,
            reason="invalid_api_key",
        )
    await acc.close()
    await acc.start()
    records = await acc.store.audit("", "", 100)
    assert sum(r.action == "admin.ListTenants" for r in records) == 60
    assert [r.reason.split()[0] for r in records if r.action == "refusals.aggregate"] == [
        "count=10"
    ]
    await acc.close()
