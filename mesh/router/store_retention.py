"""Retention inside the database: expired usage rolls up into daily rows, expired audit
records are cut off the chain's start at a checkpoint, and the run is audited itself."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from mesh.router import audit
from mesh.router.audit import AuditEntry
from mesh.router.audit_chain import AuditChain
from mesh.router.store_schema import PurgeResult

PURGE_BATCH = 50_000


def purge(
    conn: sqlite3.Connection,
    chain: AuditChain,
    cutoffs: dict[str, float | None],
    default_cutoff: float | None,
    now: float,
    content_purged: int,
) -> PurgeResult | None:
    """One retention run in the writer's transaction (see `SqliteStore.purge_expired`)."""
    usage_rows = sum(
        _roll_up_usage(conn, tenant, cutoff) for tenant, cutoff in cutoffs.items() if cutoff
    )
    iso_cutoffs = {t: (audit.iso_time(c) if c else None) for t, c in cutoffs.items()}
    iso_default = audit.iso_time(default_cutoff) if default_cutoff else None
    row = conn.execute("SELECT seq, hash FROM audit_checkpoint WHERE id = 1").fetchone()
    checkpoint = (row[0], row[1]) if row else (0, audit.GENESIS)
    cursor = conn.execute(
        "SELECT seq, hash, tenant, time FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
        (checkpoint[0], PURGE_BATCH),
    ).fetchall()
    last = last_expired(cursor, iso_cutoffs, iso_default)
    audit_records = 0
    if last is not None:
        audit_records = conn.execute("DELETE FROM audit WHERE seq <= ?", (last[0],)).rowcount
        conn.execute(
            "INSERT OR REPLACE INTO audit_checkpoint (id, seq, hash, time) VALUES (1, ?, ?, ?)",
            (*last, audit.iso_time(now)),
        )
        checkpoint = last
    if not (audit_records or usage_rows or content_purged):
        return None
    entry = purge_entry(checkpoint, audit_records, usage_rows, content_purged, cutoffs, now)
    linked = chain.append(conn, entry, None)
    return PurgeResult(audit_records, usage_rows, content_purged, checkpoint, linked)


def last_expired(
    rows: Iterable[tuple[int, str, str, str]],
    iso_cutoffs: dict[str, str | None],
    iso_default: str | None,
) -> tuple[int, str] | None:
    """The (seq, hash) ending the run of expired (seq, hash, tenant, time) rows at the start."""
    last = None
    for seq, hash_, tenant, time_ in rows:
        cutoff = iso_cutoffs.get(tenant, iso_default)
        if cutoff is None or time_ >= cutoff:
            break
        last = (seq, hash_)
    return last


def purge_entry(
    checkpoint: tuple[int, str],
    audit_records: int,
    usage_rows: int,
    content_purged: int,
    cutoffs: dict[str, float | None],
    now: float,
) -> AuditEntry:
    """The retention run's own audit record: names the checkpoint and what went."""
    kept = ", ".join(f"{t}={round((now - c) / 86400)}d" for t, c in sorted(cutoffs.items()) if c)
    return AuditEntry(
        time=audit.iso_time(now),
        request_id="",
        tenant="",
        key_id="",
        model="",
        action=audit.PURGE_ACTION,
        outcome="ok",
        status=200,
        reason=(
            f"{audit.checkpoint_reason(*checkpoint)}; audit_records={audit_records} "
            f"usage_rows={usage_rows} content_records={content_purged}; "
            f"retention {kept or 'platform default only'} (by the router)"
        ),
    )


def _roll_up_usage(conn: sqlite3.Connection, tenant: str, cutoff: float) -> int:
    """Replaces a tenant's per-request usage rows older than `cutoff` by daily totals."""
    detail = "tenant = ? AND time < ? AND request_id != ''"
    conn.execute(
        "INSERT INTO usage (time, day, request_id, tenant, key_id, model, input_tokens, "
        "output_tokens, reasoning_tokens, system_tokens, cost_units, energy_units, requests) "
        "SELECT min(time), day, '', tenant, '', model, sum(input_tokens), sum(output_tokens), "
        "sum(reasoning_tokens), sum(system_tokens), sum(cost_units), sum(energy_units), "
        f"sum(requests) FROM usage WHERE {detail} GROUP BY day, model",
        (tenant, cutoff),
    )
    return conn.execute(f"DELETE FROM usage WHERE {detail}", (tenant, cutoff)).rowcount
