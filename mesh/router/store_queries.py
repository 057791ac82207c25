"""The Store's plain row work over the writer: tenants and keys, usage and audit reads.

Two small mixins of `SqliteStore`; each needs only `_call` (runs a job on the writer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    upsert_sql,
)
from mesh.router.tenants import Tenant

_Call = Callable[..., Any]


class AccountRows:
    """Tenants and API keys: loaded whole at start, written through on every change."""

    _call: _Call

    async def load_tenants(self) -> list[Tenant]:
        rows = await self._call(
            lambda c: c.execute(f"SELECT {', '.join(TENANT_COLS)} FROM tenants").fetchall()
        )
        return [tenant_of(r) for r in rows]

    async def load_keys(self) -> list[KeyRecord]:
        rows = await self._call(
            lambda c: c.execute(f"SELECT {', '.join(KEY_COLS)} FROM api_keys").fetchall()
        )
        return [key_of(r) for r in rows]

    async def save_tenant(self, tenant: Tenant) -> None:
        await self._call(
            lambda c: c.execute(upsert_sql("tenants", TENANT_COLS), tenant_row(tenant))
        )

    async def save_keys(self, keys: Sequence[KeyRecord]) -> None:
        """Upserts keys atomically (a rotation writes the old key and its successor)."""
        rows = [key_row(k) for k in keys]
        await self._call(lambda c: c.executemany(upsert_sql("api_keys", KEY_COLS), rows))

    async def touch_keys(self, last_used: dict[str, float]) -> None:
        rows = [(t, k) for k, t in last_used.items()]
        await self._call(
            lambda c: c.executemany(
                "UPDATE api_keys SET last_used_at = max(last_used_at, ?) WHERE id = ?", rows
            )
        )


class Reports:
    """Read-only queries: usage sums, the month's spend, audit listings and export pages."""

    _call: _Call

    async def usage(self, tenant: str, since: float, until: float) -> list[UsageRow]:
        where, args = ["time >= ?", "time < ?"], [since, until]
        if tenant:
            where.append("tenant = ?")
            args.append(tenant)
        sql = (
            "SELECT tenant, model, day, sum(requests), sum(input_tokens), sum(output_tokens), "
            "sum(reasoning_tokens), sum(system_tokens), sum(cost_units), sum(energy_units) "
            f"FROM usage WHERE {' AND '.join(where)} GROUP BY tenant, model, day "
            "ORDER BY day, tenant, model"
        )
        rows = await self._call(lambda c: c.execute(sql, args).fetchall())
        return [
            UsageRow(*r[:8], cost_eur=from_units(r[8]), energy_kwh=from_units(r[9])) for r in rows
        ]

    async def month_spend(self, month_start: float) -> dict[str, Decimal]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT tenant, sum(cost_units) FROM usage WHERE time >= ? GROUP BY tenant",
                (month_start,),
            ).fetchall()
        )
        return {t: from_units(units) for t, units in rows}

    async def audit(self, tenant: str, since: str, limit: int) -> list[AuditEntry]:
        where, args = ["time >= ?"], [since]
        if tenant:
            where.append("tenant = ?")
            args.append(tenant)
        sql = (
            f"SELECT {', '.join(AUDIT_COLS)} FROM audit WHERE {' AND '.join(where)} "
            "ORDER BY seq DESC LIMIT ?"
        )
        rows = await self._call(lambda c: c.execute(sql, [*args, limit]).fetchall())
        return [audit_of(r) for r in reversed(rows)]

    async def audit_page(
        self, tenant: str, since: str, until: str, after_seq: int, limit: int
    ) -> list[AuditEntry]:
        """Records after `after_seq` in chain order (exports page through with it)."""
        sql, args = audit_page_sql(tenant, since, until, after_seq, limit, "?")
        rows = await self._call(lambda c: c.execute(sql, args).fetchall())
        return [audit_of(r) for r in rows]
