"""Retention in PostgreSQL: the SQLite store's rules (mesh.router.store_retention), in one
transaction. One router at a time runs it (a retention lock; another router finding it
taken skips its run: the work is being done); the usage roll-up runs before the chain's
lock is taken, so appends wait only for the audit cut and the purge record."""

from __future__ import annotations

from psycopg import AsyncConnection

from mesh.router import audit
from mesh.router.pg.chain import PgChain, lock_chain
from mesh.router.pg.schema import RETENTION_LOCK
from mesh.router.store_retention import PURGE_BATCH, last_expired, purge_entry
from mesh.router.store_schema import PurgeResult


async def purge(
    conn: AsyncConnection,
    chain: PgChain,
    cutoffs: dict[str, float | None],
    default_cutoff: float | None,
    now: float,
    content_purged: int,
) -> PurgeResult | None:
    """One retention run (see `SqliteStore.purge_expired`)."""
    async with conn.transaction():
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (RETENTION_LOCK,))
        row = await cur.fetchone()
        if not (row and row[0]):
            return None  # another router is running retention right now
        usage_rows = 0
        for tenant, cutoff in cutoffs.items():
            if cutoff:
                usage_rows += await _roll_up_usage(conn, tenant, cutoff)
        await lock_chain(conn)
        iso_cutoffs = {t: (audit.iso_time(c) if c else None) for t, c in cutoffs.items()}
        iso_default = audit.iso_time(default_cutoff) if default_cutoff else None
        cur = await conn.execute("SELECT seq, hash FROM audit_checkpoint WHERE id = 1")
        row = await cur.fetchone()
        checkpoint = (int(row[0]), row[1]) if row else (0, audit.GENESIS)
        cur = await conn.execute(
            "SELECT seq, hash, tenant, time FROM audit WHERE seq > %s ORDER BY seq LIMIT %s",
            (checkpoint[0], PURGE_BATCH),
        )
        last = last_expired(await cur.fetchall(), iso_cutoffs, iso_default)
        audit_records = 0
        if last is not None:
            cur = await conn.execute("DELETE FROM audit WHERE seq <= %s", (last[0],))
            audit_records = cur.rowcount
            await conn.execute(
                "INSERT INTO audit_checkpoint (id, seq, hash, time) VALUES (1, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, "
                "time = EXCLUDED.time",
                (*last, audit.iso_time(now)),
            )
            checkpoint = last
        if not (audit_records or usage_rows or content_purged):
            return None
        entry = purge_entry(checkpoint, audit_records, usage_rows, content_purged, cutoffs, now)
        (linked,) = await chain.link(conn, [(entry, None)])
    return PurgeResult(audit_records, usage_rows, content_purged, checkpoint, linked)


async def _roll_up_usage(conn: AsyncConnection, tenant: str, cutoff: float) -> int:
    """Replaces a tenant's per-request usage rows older than `cutoff` by daily totals."""
    detail = "tenant = %s AND time < %s AND request_id != ''"
    await conn.execute(
        "INSERT INTO usage (time, day, request_id, tenant, key_id, model, input_tokens, "
        "output_tokens, reasoning_tokens, system_tokens, cost_units, energy_units, requests) "
        "SELECT min(time), day, '', tenant, '', model, sum(input_tokens), sum(output_tokens), "
        "sum(reasoning_tokens), sum(system_tokens), sum(cost_units), sum(energy_units), "
        f"sum(requests) FROM usage WHERE {detail} GROUP BY day, model, tenant",
        (tenant, cutoff),
    )
    cur = await conn.execute(f"DELETE FROM usage WHERE {detail}", (tenant, cutoff))
    return cur.rowcount
