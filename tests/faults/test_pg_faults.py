"""A router on PostgreSQL losing its database (through a TCP proxy the test cuts; the
machine's shared server is never touched): requests fail closed with 503 while it is gone,
no request answered successfully lacks its records, and service resumes by itself once
the database is back (admin calls get a clear 503 meanwhile); `llmaas-admin audit verify`
(the real CLI) passes against it.
Bounded retry loops are hang guards, not timing assertions. Skips, saying why, when
PostgreSQL does not answer on 127.0.0.1:5432."""

from __future__ import annotations

import asyncio
import json

import grpc

from mesh.errors import from_rpc_error
from mesh.router.pg.store import PgStore
from tests.mesh.router.pg_testkit import AUDIT_KEY, scratch_database, sql, url_of
from tests.netproxy import NetProxy
from tests.security.secure_kit import ADMIN_KEY, ANSWER, Clock, start_router
from tools.ops.admin import cli


async def _chat(router, key: str, request_id: str) -> str | grpc.aio.AioRpcError:
    try:
        return await router.chat(key, "hello", request_id)
    except grpc.aio.AioRpcError as err:
        return err


async def test_router_fails_closed_503_while_postgresql_is_away_and_recovers(
    tmp_path, monkeypatch, capsys
) -> None:
    with scratch_database() as db, NetProxy("127.0.0.1", 5432) as proxy:
        clock = Clock()
        store = PgStore(url_of(db, proxy.port), audit_key=AUDIT_KEY, timeout_s=2)
        router = await start_router(tmp_path, clock, store=store)
        try:
            key = await router.add_tenant("acme")
            served = []
            for i in range(3):
                assert await _chat(router, key, f"before-{i}") == "".join(ANSWER)
                served.append(f"before-{i}")
            proxy.cut()
            refused = []
            for i in range(3):
                outcome = await _chat(router, key, f"during-{i}")
                assert isinstance(outcome, grpc.aio.AioRpcError), "served without its records"
                refused.append(from_rpc_error(outcome))
            last = refused[-1]
            assert (last.http_status, last.code) == (503, "audit_unavailable"), last
            assert "PostgreSQL" in last.message and "unavailable" in last.message
            # An admin call meanwhile gets a clear 503 too (not an internal error).
            monkeypatch.setenv("LLMAAS_ROUTER_ADDR", router.address)
            monkeypatch.setenv("LLMAAS_ADMIN_KEY", ADMIN_KEY)
            assert await asyncio.to_thread(cli.main, ["usage", "--json"]) == 1
            err = capsys.readouterr().err
            assert "PostgreSQL" in err and "(database_unavailable)" in err, err
            proxy.restore()
            for i in range(60):  # hang guard: a probe write brings the service back
                clock.now += 5  # the probe runs at most every probe interval (router clock)
                outcome = await _chat(router, key, f"after-{i}")
                if isinstance(outcome, str):
                    served.append(f"after-{i}")
                    break
                assert from_rpc_error(outcome).http_status == 503
                await asyncio.sleep(0.5)
            assert served[-1].startswith("after-"), "service did not resume"
            stored = {r[0] for r in sql(db, "SELECT request_id FROM audit")}
            billed = {r[0] for r in sql(db, "SELECT request_id FROM usage")}
            assert set(served) <= stored and set(served) <= billed
            code = await asyncio.to_thread(cli.main, ["audit", "verify", "--json"])
            result = json.loads(capsys.readouterr().out)
            assert code == 0 and result["ok"] is True, result
            assert result["checked"] >= len(served)
        finally:
            await router.close()
