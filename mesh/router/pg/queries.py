"""The PostgreSQL store's plain row work: tenants and keys, usage and audit reads.

Two mixins of `PgStore`, the counterparts of mesh.router.store_queries for SQLite (same
results: text compares and sorts bytewise, the "C" collation); each needs only `_rows`
(one statement on a pooled connection).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

from mesh.router.audit import AuditEntry
from mesh.router.keys import KeyRecord
from mesh.router.store_schema import (
    AUDIT_COLS,
    KEY_COLS,
    TENANT_COLS,
    UsageRow,
    audit_of,
    audit_page_sql,
    from_units,
    key_of,
    key_row,
    tenant_of,
    tenant_row,
)
from mesh.router.tenants import Tenant

_Rows = Callable[..., Awaitable[list[tuple]]]


def upsert(table: str, cols: tuple[str, ...], unique: str) -> str:
    """SQLite's INSERT OR REPLACE: the row that has this `unique` value becomes this row.
    Keys use their hash (not their id): two routers bootstrapping one env key at once
    (each with its own new id) end with one row, the last, as in SQLite; an id never
    changes its hash, so the id needs no conflict rule of its own."""
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c != unique)
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
        f"ON CONFLICT ({unique}) DO UPDATE SET {updates}"
    )


class PgAccountRows:
    """Tenants and API keys: loaded whole at start, written through on every change."""

    _rows: _Rows
    _write_many: Callable[[str, Sequence[tuple]], Awaitable[Any]]

    async def load_tenants(self) -> list[Tenant]:
        return [
            tenant_of(r) for r in await self._rows(f"SELECT {', '.join(TENANT_COLS)} FROM tenants")
        ]

    async def load_keys(self) -> list[KeyRecord]:
        rows = await self._rows(f"SELECT {', '.join(KEY_COLS)} FROM api_keys")
        return [
            key_of(tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)) for r in rows
        ]

    async def save_tenant(self, tenant: Tenant) -> None:
        await self._write_many(upsert("tenants", TENANT_COLS, "name"), [tenant_row(tenant)])

    async def save_keys(self, keys: Sequence[KeyRecord]) -> None:
        """Upserts keys atomically (a rotation writes the old key and its successor)."""
        await self._write_many(upsert("api_keys", KEY_COLS, "key_hash"), [key_row(k) for k in keys])

    async def touch_keys(self, last_used: dict[str, float]) -> None:
        await self._write_many(
            "UPDATE api_keys SET last_used_at = greatest(last_used_at, %s) WHERE id = %s",
            [(t, k) for k, t in last_used.items()],
        )


class PgReports:
    """Read-only queries: usage sums, the month's spend, audit listings and export pages."""

    _rows: _Rows

    async def usage(self, tenant: str, since: float, until: float) -> list[UsageRow]:
        where, args = ["time >= %s", "time < %s"], [since, until]
        if tenant:
            where.append("tenant = %s")
            args.append(tenant)
        rows = await self._rows(
            "SELECT tenant, model, day, sum(requests), sum(input_tokens), sum(output_tokens), "
            "sum(reasoning_tokens), sum(system_tokens), sum(cost_units), sum(energy_units) "
            f"FROM usage WHERE {' AND '.join(where)} GROUP BY tenant, model, day "
            "ORDER BY day, tenant, model",
            args,
        )
        return [
            UsageRow(
                *r[:3],
                *(int(n) for n in r[3:8]),
                cost_eur=from_units(int(r[8])),
                energy_kwh=from_units(int(r[9])),
            )
            for r in rows
        ]

    async def month_spend(self, month_start: float) -> dict[str, Decimal]:
        rows = await self._rows(
            "SELECT tenant, sum(cost_units) FROM usage WHERE time >= %s GROUP BY tenant",
            (month_start,),
        )
        return {t: from_units(int(units)) for t, units in rows}

    async def audit(self, tenant: str, since: str, limit: int) -> list[AuditEntry]:
        where, args = ["time >= %s"], [since]
        if tenant:
            where.append("tenant = %s")
            args.append(tenant)
        rows = await self._rows(
            f"SELECT {', '.join(AUDIT_COLS)} FROM audit WHERE {' AND '.join(where)} "
            "ORDER BY seq DESC LIMIT %s",
            [*args, limit],
        )
        return [audit_of(r) for r in reversed(rows)]

    async def audit_page(
        self, tenant: str, since: str, until: str, after_seq: int, limit: int
    ) -> list[AuditEntry]:
        """Records after `after_seq` in chain order (exports page through with it)."""
        rows = await self._rows(*audit_page_sql(tenant, since, until, after_seq, limit, "%s"))
        return [audit_of(r) for r in rows]
