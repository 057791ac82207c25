"""Tamper evidence: `llmaas-admin audit verify` (the real CLI against an in-process router)
names the first bad record after an edit, a deletion or a swap, a cut tail (head row
included: the head is anchored outside the database), a rewrite by someone without the
audit key, a removed or forged anchor; a retention purge keeps the chain verifiable from
its checkpoint, is itself audited, and cannot be abused to hide records."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import sqlite3
from decimal import Decimal
from types import SimpleNamespace

import grpc
import pytest
from secure_kit import ADMIN_KEY, ANSWER, Clock, start_router

import mesh.crypto
from mesh.errors import from_rpc_error
from mesh.router.access import Principal, RequestRecord
from mesh.router.audit import GENESIS, AuditEntry, canonical
from mesh.router.retention import DAY_S, Retention
from tools.ops.admin import cli


@pytest.fixture
async def router(tmp_path, monkeypatch):
    clock = Clock()
    r = await start_router(tmp_path, clock)
    r.clock = clock
    monkeypatch.setenv("LLMAAS_ROUTER_ADDR", r.address)
    monkeypatch.setenv("LLMAAS_ADMIN_KEY", ADMIN_KEY)
    yield r
    await r.close()


@pytest.fixture
def run(capsys):
    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli.main, list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


async def _requests(router, tenant: str, n: int, tag: str = "") -> None:
    principal = Principal(tenant=tenant, key_id=f"key_{tenant}")
    for i in range(n):
        await router.accounts.record(
            RequestRecord(
                request_id=f"{tenant}-{tag}{i}",
                action="chat.completions",
                model="m",
                outcome="ok",
                status=200,
                principal=principal,
                input_tokens=10,
                output_tokens=5,
                cost_eur=Decimal("0.001"),
            )
        )


def _sql(router, *statements: str) -> None:
    """An attacker with write access to the database file (the router keeps running)."""
    conn = sqlite3.connect(router.db, isolation_level=None)
    for sql in statements:
        conn.execute(sql)
    conn.close()


async def _verify(run) -> dict:
    code, out, err = await run("audit", "verify", "--json")
    result = json.loads(out)
    assert (code == 0) == result["ok"], (out, err)
    return result


TAMPERING = {
    "edit one byte": (["UPDATE audit SET model = 'n' WHERE seq = 3"], 3, "edited"),
    "edit tokens": (["UPDATE audit SET output_tokens = 4 WHERE seq = 5"], 5, "edited"),
    "delete": (["DELETE FROM audit WHERE seq = 4"], 5, "seq 4..4 missing"),
    "delete the last": (["DELETE FROM audit WHERE seq = 6"], 6, "deleted"),
    # Issue #14 point 12: this passed before (the head row went with the tail).
    "cut the tail and the head row": (
        ["DELETE FROM audit WHERE seq >= 5", "DELETE FROM audit_head"],
        5,
        "the anchor (outside the database) says seq 6",
    ),
    "unkey the chain": (["DELETE FROM audit_keying"], 1, "audit_keying row is missing"),
    "swap two": (
        [
            "UPDATE audit SET seq = -2 WHERE seq = 2",
            "UPDATE audit SET seq = 2 WHERE seq = 3",
            "UPDATE audit SET seq = 3 WHERE seq = -2",
        ],
        2,
        "reordered",
    ),
}


@pytest.mark.parametrize("case", list(TAMPERING))
async def test_verify_names_the_first_bad_record(router, run, case) -> None:
    await _requests(router, "acme", 6)
    assert (await _verify(run)) | {"checked": 6} == {
        "ok": True,
        "checked": 6,
        "first_bad_seq": 0,
        "problem": "",
        "checkpoint_seq": 0,
    }
    statements, first_bad, problem = TAMPERING[case]
    _sql(router, *statements)
    result = await _verify(run)
    assert (
        not result["ok"] and result["first_bad_seq"] == first_bad and problem in result["problem"]
    )
    code, _out, err = await run("audit", "verify")  # the human form says where, too
    assert code == 1 and f"BROKEN at seq {first_bad}" in err


async def test_export_jsonl_and_csv_are_complete_and_in_chain_order(router, run) -> None:
    await _requests(router, "acme", 3)
    await _requests(router, "globex", 2)
    code, out, _ = await run("audit", "export", "--tenant", "acme", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["request_id"] for r in rows] == ["acme-0", "acme-1", "acme-2"]
    assert all(r["tenant"] == "acme" and len(r["hash"]) == 64 for r in rows)
    code, out, _ = await run("audit", "export", "--since", "2026-01-01", "--format", "csv")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("seq,time,request_id,tenant") and len(lines) == 6
    code, out, _ = await run("audit", "export", "--since", "2026-01-02")
    assert code == 0 and out.strip() == ""


async def test_retention_purge_keeps_the_chain_verifiable_and_is_audited(
    router, run, monkeypatch
) -> None:
    clock, accounts = router.clock, router.accounts
    monkeypatch.setattr(mesh.crypto, "time", SimpleNamespace(time=clock))
    await router.add_tenant("acme", retention_days=30, content_logging=True)
    await router.add_tenant("keep")  # retention 0: forever
    await router.content.record("acme", "old", "old prompt", "old answer")
    await _requests(router, "acme", 3)  # seq 1-3: expire
    await _requests(router, "keep", 1)  # seq 4: kept forever, so the chain is cut before it
    await _requests(router, "acme", 2, "late")  # seq 5-6: expire, but after a kept record
    clock.now += 31 * DAY_S
    await _requests(router, "acme", 1, "fresh")  # seq 7
    await router.content.record("acme", "new", "new prompt", "new answer")
    retention = Retention(accounts, router.content, audit_retention_days=365)

    result = await retention.run_once()
    assert (result.audit_records, result.usage_rows, result.checkpoint[0]) == (3, 5, 3)
    assert result.content_records == 1 and await router.content.read("acme", "old") is None
    assert await router.content.read("acme", "new") == ("new prompt", "new answer")
    assert await retention.run_once() is None  # nothing more expired: no empty purge records

    verified = await _verify(run)
    assert verified["ok"] and verified["checkpoint_seq"] == 3 and verified["checked"] == 5
    code, out, _ = await run("audit", "--json", "--limit", "100")
    records = json.loads(out)
    assert [r["seq"] for r in records] == [4, 5, 6, 7, 8]
    purge = records[-1]
    assert purge["action"] == "retention.purge"
    assert "audit_records=3 usage_rows=5 content_records=1" in purge["reason"]
    assert f"checkpoint seq=3 hash={result.checkpoint[1]}" in purge["reason"]
    # Usage detail is gone but the bill is not: expired rows rolled up into daily totals.
    code, out, _ = await run("usage", "--tenant", "acme", "--json")
    total = json.loads(out)["total"]
    assert total["requests"] == 6 and total["input_tokens"] == 60 and total["cost_eur"] == "0.006"
    conn = sqlite3.connect(router.db)
    assert conn.execute("SELECT count(*) FROM usage WHERE tenant = 'acme'").fetchone() == (2,)
    conn.close()

    # Moving the checkpoint to hide one more record, or dropping it, is caught.
    hash4 = records[0]["hash"]
    _sql(
        router,
        f"UPDATE audit_checkpoint SET seq = 4, hash = '{hash4}'",
        "DELETE FROM audit WHERE seq = 4",
    )
    bad = await _verify(run)
    assert not bad["ok"] and bad["first_bad_seq"] == 8 and "checkpoint" in bad["problem"]
    _sql(router, "DELETE FROM audit_checkpoint")
    bad = await _verify(run)
    assert not bad["ok"] and bad["first_bad_seq"] == 5 and "missing" in bad["problem"]


def _rewrite(router, link_hash) -> None:
    """Someone with write access to the database, not to the audit key, rewrites every
    record (here: one model changed) and re-links the whole chain and its head row."""
    conn = sqlite3.connect(router.db, isolation_level=None)
    cols = [c[1] for c in conn.execute("PRAGMA table_info(audit)")]
    rows = [
        dict(zip(cols, r, strict=True)) for r in conn.execute("SELECT * FROM audit ORDER BY seq")
    ]
    prev = GENESIS
    conn.execute("BEGIN")
    for row in rows:
        entry = AuditEntry(**{**row, "model": "forged" if row["seq"] == 2 else row["model"]})
        entry = dataclasses.replace(entry, prev_hash=prev, hash="")
        new_hash = link_hash(prev.encode() + canonical(entry))
        conn.execute(
            "UPDATE audit SET model = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (entry.model, prev, new_hash, row["seq"]),
        )
        prev = new_hash
    conn.execute("UPDATE audit_head SET hash = ?", (prev,))
    conn.execute("COMMIT")
    conn.close()


@pytest.mark.parametrize(
    "how",
    {
        "plain sha-256 (as the unkeyed chain was)": lambda d: hashlib.sha256(d).hexdigest(),
        "hmac with a guessed key": lambda d: hmac.new(b"guess", d, hashlib.sha256).hexdigest(),
    }.items(),
    ids=lambda item: item[0],
)
async def test_a_rewrite_without_the_audit_key_is_reported(router, run, how) -> None:
    await _requests(router, "acme", 4)
    _rewrite(router, how[1])
    result = await _verify(run)
    assert not result["ok"] and result["first_bad_seq"] == 1 and "edited" in result["problem"]


async def test_a_removed_or_forged_anchor_is_reported(router, run) -> None:
    await _requests(router, "acme", 3)
    anchor = router.accounts.store.anchor_path
    saved = json.loads(anchor.read_text())
    anchor.write_text(json.dumps({**saved, "seq": 2}))  # move the head back: needs the key
    result = await _verify(run)
    assert not result["ok"] and "not signed with this audit key" in result["problem"]
    anchor.unlink()
    result = await _verify(run)
    assert not result["ok"] and "missing" in result["problem"]
    anchor.write_text(json.dumps(saved))
    assert (await _verify(run))["ok"]


async def test_requests_after_the_tail_is_cut_are_audited_after_a_visible_gap(router, run):
    """Point 18: tail + head row deleted under a running router used to make every later
    write fail (UNIQUE constraint failed: audit.seq) while requests were served unaudited."""
    key = await router.add_tenant("acme")
    await router.chat(key, "hello", "before-1")
    await router.chat(key, "hello", "before-2")
    await router.chat(key, "hello", "before-3")
    _sql(router, "DELETE FROM audit WHERE seq >= 2", "DELETE FROM audit_head")
    # A failed batch makes the writer re-read its head from the (tampered) database.
    with pytest.raises(sqlite3.OperationalError):
        await router.accounts.store._call(lambda c: c.execute("ROLLBACK"))
    assert await router.chat(key, "hello", "after") == "".join(ANSWER)
    records = await router.accounts.store.audit("acme", "", 10)
    assert records[-1].request_id == "after"
    result = await _verify(run)
    assert not result["ok"] and "seq 2..3 missing" in result["problem"]


async def test_requests_are_refused_503_while_audit_writes_fail(router) -> None:
    """Point 18, fail closed: once an audit write failed (here a tamper trigger blocks every
    insert), requests are refused 503 `audit_unavailable`, never served unaudited; the
    service comes back by itself when writes work again."""
    key = await router.add_tenant("acme")
    assert await router.chat(key, "hello", "ok-1") == "".join(ANSWER)
    _sql(
        router,
        "CREATE TRIGGER deny BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'denied'); END",
    )
    with pytest.raises(grpc.aio.AioRpcError):  # its own record failed: not served complete
        await router.chat(key, "hello", "lost")
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await router.chat(key, "hello", "refused")
        err = from_rpc_error(refused.value)
        assert (err.http_status, err.code) == (503, "audit_unavailable"), err.message
    _sql(router, "DROP TRIGGER deny")
    router.clock.now += 60  # past the probe interval: the next refusal starts a probe
    with pytest.raises(grpc.aio.AioRpcError):
        await router.chat(key, "hello", "refused")
    assert await router.accounts._probe_task is True
    assert await router.chat(key, "hello", "ok-2") == "".join(ANSWER)
    served = [e.request_id for e in await router.accounts.store.audit("acme", "", 100)]
    assert served == ["ok-1", "ok-2"]
