"""The Admin service in-process on 127.0.0.1:0, driven by the real CLI (`tools.admin.main`)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace

import grpc
import pytest
from accounts_testkit import FakeClock, make_accounts

from mesh.errors import Unauthenticated
from mesh.pb import admin_pb2, admin_pb2_grpc
from mesh.router.access import RequestRecord
from mesh.router.accounts import Bootstrap
from mesh.router.admin_service import SERVICE_NAME, add_to_server
from mesh.rpc import add_port, build_server
from tools.ops.admin import cli

ADMIN_KEY = "sk-admin-test-0123456789"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def mesh(tmp_path, clock, monkeypatch):
    accounts = make_accounts(tmp_path, clock, bootstrap=Bootstrap(admin_key=ADMIN_KEY))
    await accounts.start()
    server, _health = build_server([SERVICE_NAME])
    add_to_server(accounts, server)
    port = add_port(server, "127.0.0.1", 0, "router")
    await server.start()
    monkeypatch.setenv("LLMAAS_ROUTER_ADDR", f"127.0.0.1:{port}")
    monkeypatch.setenv("LLMAAS_ADMIN_KEY", ADMIN_KEY)
    yield accounts, port
    await server.stop(0)
    await accounts.close()


@pytest.fixture
def run(capsys):
    async def run(*argv: str, key: str | None = None) -> tuple[int, str, str]:
        args = [*(("--key", key) if key else ()), *argv]
        code = await asyncio.to_thread(cli.main, args)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


async def test_operator_workflow(mesh, run) -> None:
    accounts, _port = mesh
    assert (await run("tenant", "create", "acme", "--tier", "free"))[0] == 0
    code, out, _ = await run("tenant", "list", "--json")
    assert code == 0 and {t["name"] for t in json.loads(out)} == {"admin", "acme"}
    code, out, _ = await run(
        "key", "create", "--tenant", "acme", "--models", "qwen3:*", "smollm2:135m", "--json"
    )
    created = json.loads(out)
    assert code == 0 and set(created) == {"id", "key"} and created["key"].startswith("sk-llmaas-")
    principal = await accounts.authenticate(created["key"])
    assert principal.model_patterns == ("qwen3:*", "smollm2:135m")
    code, out, _ = await run("key", "list", "--tenant", "acme", "--json")
    assert [k["id"] for k in json.loads(out)] == [created["id"]]
    assert created["key"] not in out
    code, out, _ = await run(
        "tenant",
        "set",
        "acme",
        "--tier",
        "premium",
        "--filter",
        "off",
        "--rotation-max-age-days",
        "30",
        "--rotation-overlap-hours",
        "24",
        "--json",
    )
    t = json.loads(out)
    assert (t["tier"], t["filter_enabled"], t["rotation_max_age_s"], t["rotation_overlap_s"]) == (
        "premium",
        False,
        30 * 86400,
        86400,
    )
    code, out, _ = await run("key", "revoke", created["id"])
    assert code == 0 and created["id"] in out
    with pytest.raises(Unauthenticated):
        await accounts.authenticate(created["key"])
    code, out, _ = await run("audit", "verify", "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    code, out, _ = await run("audit", "--tenant", "acme", "--json")
    actions = [r["action"] for r in json.loads(out)]
    assert actions == ["tenant.create", "key.create", "tenant.update", "key.revoke"]


async def test_usage_totals_match_recorded_requests(mesh, run) -> None:
    accounts, _port = mesh
    await run("tenant", "create", "acme")
    _code, out, _ = await run("key", "create", "--tenant", "acme", "--json")
    p = await accounts.authenticate(json.loads(out)["key"])
    for i, (inp, outp, reasoning) in enumerate([(10, 5, 0), (7, 3, 2), (1, 0, 0)]):
        await accounts.record(
            RequestRecord(
                f"r{i}",
                "chat.completions",
                "smollm2:135m",
                "ok",
                200,
                principal=p,
                input_tokens=inp,
                output_tokens=outp,
                reasoning_tokens=reasoning,
                system_tokens=1,
            )
        )
    code, out, _ = await run("usage", "--tenant", "acme", "--since", "2026-01-01", "--json")
    total = json.loads(out)["total"]
    assert code == 0
    assert (
        total["requests"],
        total["input_tokens"],
        total["output_tokens"],
        total["reasoning_tokens"],
        total["system_tokens"],
    ) == (3, 18, 8, 2, 3)
    code, out, _ = await run("usage", "--tenant", "acme")
    assert code == 0 and "TOTAL" in out and "smollm2:135m" in out


async def test_tenant_keys_see_only_their_own_tenant(mesh, run) -> None:
    accounts, _port = mesh
    for name in ("acme", "other"):
        await run("tenant", "create", name)
    _c, out, _ = await run("key", "create", "--tenant", "acme", "--json")
    acme_key = json.loads(out)["key"]
    _c, out, _ = await run("key", "create", "--tenant", "other", "--json")
    other_id = json.loads(out)["id"]
    assert (await run("usage", key=acme_key))[0] == 0
    assert (await run("key", "list", key=acme_key))[0] == 0
    for argv in (
        ("usage", "--tenant", "other"),
        ("key", "list", "--tenant", "other"),
        ("audit", "--tenant", "other"),
        ("key", "successor", other_id),
        ("tenant", "create", "mine"),
        ("key", "revoke", other_id),
        ("audit", "verify"),
    ):
        code, out, err = await run(*argv, key=acme_key)
        assert (
            code == 1 and out == "" and "may not call" in err and len(err.strip().splitlines()) == 1
        )
    refused = [e for e in await accounts.store.audit("acme", "", 100) if e.outcome == "refused"]
    assert len(refused) == 7 and all(e.status == 403 for e in refused)


async def test_tenant_fetches_its_successor_once(mesh, run, clock) -> None:
    accounts, _port = mesh
    await run("tenant", "create", "acme")
    tenant = accounts.directory.tenant("acme")
    await accounts.directory.save_tenant(
        replace(tenant, rotation_max_age_s=100, rotation_overlap_s=20)
    )
    _c, out, _ = await run("key", "create", "--tenant", "acme", "--json")
    old = json.loads(out)
    code, _out, err = await run("key", "successor", old["id"], key=old["key"])
    assert code == 1 and "no successor" in err
    clock.advance(81)
    await accounts.rotate_due_keys()
    code, out, _ = await run("key", "successor", old["id"], "--json", key=old["key"])
    new = json.loads(out)
    assert code == 0 and (await accounts.authenticate(new["key"])).key_id == new["id"]
    code, _out, err = await run("key", "successor", old["id"], key=old["key"])
    assert code == 1 and "already retrieved" in err
    code, out, _ = await run("key", "rotate", new["id"], "--json")
    assert code == 0 and json.loads(out)["key"].startswith("sk-llmaas-")


async def test_clear_one_line_errors(mesh, run, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LLMAAS_RUN_DIR", str(tmp_path))  # no make-run admin key to fall back on
    code, _out, err = await run("key", "create", "--tenant", "nope")
    assert code == 1 and err == "llmaas-admin: error: No tenant named 'nope'. (tenant_not_found)\n"
    code, _out, err = await run("tenant", "create", "acme", "--tier", "gold")
    assert code == 1 and "Unknown tier 'gold'" in err
    code, _out, err = await run("tenant", "list", key="sk-wrong")
    assert code == 1 and "Incorrect API key" in err
    monkeypatch.setenv("LLMAAS_ROUTER_ADDR", "127.0.0.1:1")
    code, _out, err = await run("tenant", "list")
    assert code == 1 and "cannot reach the router at 127.0.0.1:1" in err
    monkeypatch.delenv("LLMAAS_ADMIN_KEY")
    assert (await run("tenant", "list"))[0] == 2


async def test_grpc_clients_need_a_key(mesh) -> None:
    _accounts, port = mesh
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListTenants(admin_pb2.ListTenantsRequest())
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        md = (("authorization", f"Bearer {ADMIN_KEY}"),)
        tenants = await stub.ListTenants(admin_pb2.ListTenantsRequest(), metadata=md)
        assert [t.name for t in tenants.tenants] == ["admin"]


async def test_a_key_fetches_only_its_own_successor(mesh, run, clock) -> None:
    """Issue #14 point 11: any key of a tenant could take the auto-rotated successor of any
    other key of that tenant, admin keys included (locking their holder out)."""
    accounts, _port = mesh
    await run("tenant", "create", "acme")
    tenant = accounts.directory.tenant("acme")
    await accounts.directory.save_tenant(
        replace(tenant, rotation_max_age_s=100, rotation_overlap_s=20)
    )
    _c, out, _ = await run("key", "create", "--tenant", "acme", "--json")
    mine = json.loads(out)
    _c, out, _ = await run("key", "create", "--tenant", "acme", "--json")
    other = json.loads(out)
    _c, out, _ = await run("key", "create", "--tenant", "acme", "--admin", "--json")
    admin = json.loads(out)
    clock.advance(81)
    assert await accounts.rotate_due_keys() == 3
    for target in (other["id"], admin["id"]):
        code, out, err = await run("key", "successor", target, key=mine["key"])
        assert code == 1 and out == "" and "only for itself" in err, err
    refused = [e for e in await accounts.store.audit("acme", "", 100) if e.outcome == "refused"]
    assert [e.action for e in refused] == ["admin.GetSuccessorKey"] * 2
    # The holders still get their successors (nothing was consumed by the refused calls).
    for key in (other, admin, mine):
        code, out, _ = await run("key", "successor", key["id"], "--json", key=key["key"])
        assert code == 0 and json.loads(out)["key"].startswith("sk-llmaas-")


def _big_records(accounts, n: int, size: int) -> None:
    """Records as an old router stored them (unclipped), straight into the database."""
    conn = sqlite3.connect(accounts.store.path, isolation_level=None)
    for i in range(n):
        conn.execute(
            "INSERT INTO audit (time, request_id, tenant, key_id, model, action, outcome, "
            "status, input_tokens, output_tokens, latency_ms, reason, filter_verdict, "
            "prev_hash, hash) VALUES ('2026-01-01T00:00:00.000Z', ?, '', '', ?, "
            "'chat.completions', 'refused', 401, 0, 0, 0, '', '', '', '')",
            (f"big-{i}", "m" * size),
        )
    conn.close()


async def test_audit_replies_stay_under_the_message_limit(mesh, run, monkeypatch) -> None:
    """Issue #14 point 5: 60 MB of audit made `llmaas-admin audit` fail with `Received
    message larger than max (rate_limit_exceeded)`. Replies are now cut by bytes."""
    accounts, _port = mesh
    monkeypatch.setenv("LLMAAS_MAX_BODY_BYTES", "1024")  # message limit: 1 MiB + 1 KiB
    _big_records(accounts, 12, 400_000)  # 4.8 MB: past the 4 MiB gRPC default too
    code, out, err = await run("audit", "--limit", "12", "--json")
    assert code == 0, err
    listed = [r["request_id"] for r in json.loads(out)]
    assert listed == [f"big-{i}" for i in range(12 - len(listed), 12)]  # the newest ones
    assert 0 < len(listed) < 12
    code, out, err = await run("audit", "export")
    exported = [json.loads(line)["request_id"] for line in out.splitlines()]
    assert code == 0 and exported == [f"big-{i}" for i in range(12)], err


def test_transport_limits_are_not_reported_as_rate_limits() -> None:
    class TooLarge(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.RESOURCE_EXHAUSTED

        def details(self):
            return "Received message larger than max (5000000 vs. 4194304)"

        def trailing_metadata(self):
            return ()

    message = cli._rpc_message(TooLarge(), "127.0.0.1:1")
    assert "rate" not in message and "message larger than max" in message
    assert message.startswith("transport limit")
