"""The accounts database's shape: migrations, column lists and row <-> record conversions.

Money and energy are stored as integers of 1e-12 (EUR, kWh): exact sums, no float drift.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from mesh.router.audit import AuditEntry
from mesh.router.keys import KeyRecord
from mesh.router.tenants import Tenant

UNITS = Decimal(10) ** 12


def to_units(value: Decimal) -> int:
    return int((value * UNITS).to_integral_value(ROUND_HALF_EVEN))


def from_units(units: int) -> Decimal:
    return (Decimal(units) / UNITS).normalize() if units else Decimal(0)


@dataclass(frozen=True, slots=True)
class UsageEntry:
    time: float
    request_id: str
    tenant: str
    key_id: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    system_tokens: int = 0
    cost_eur: Decimal = Decimal(0)
    energy_kwh: Decimal = Decimal(0)


@dataclass(slots=True)
class UsageRow:
    """Usage summed per tenant, model and UTC day ('' where summed over)."""

    tenant: str = ""
    model: str = ""
    day: str = ""
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    system_tokens: int = 0
    cost_eur: Decimal = Decimal(0)
    energy_kwh: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What one retention run removed; `checkpoint` is the (seq, hash) the chain starts after."""

    audit_records: int
    usage_rows: int
    content_records: int
    checkpoint: tuple[int, str]
    event: AuditEntry


MIGRATIONS: list[tuple[str, ...]] = [
    (  # 1: accounts, usage, audit
        """CREATE TABLE tenants (name TEXT PRIMARY KEY, tier TEXT NOT NULL,
            filter_enabled INTEGER NOT NULL, experimental_opt_in INTEGER NOT NULL,
            rotation_max_age_s INTEGER NOT NULL, rotation_overlap_s INTEGER NOT NULL,
            retention_days INTEGER NOT NULL, content_logging INTEGER NOT NULL,
            model_patterns TEXT NOT NULL, created_at REAL NOT NULL)""",
        """CREATE TABLE api_keys (id TEXT PRIMARY KEY, tenant TEXT NOT NULL,
            key_hash BLOB NOT NULL UNIQUE, model_patterns TEXT, admin INTEGER NOT NULL,
            created_at REAL NOT NULL, expires_at REAL NOT NULL, revoked_at REAL NOT NULL,
            predecessor_id TEXT NOT NULL, successor_id TEXT NOT NULL,
            last_used_at REAL NOT NULL, pending_secret BLOB)""",
        """CREATE TABLE usage (id INTEGER PRIMARY KEY, time REAL NOT NULL, day TEXT NOT NULL,
            request_id TEXT NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL,
            model TEXT NOT NULL, input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL, system_tokens INTEGER NOT NULL,
            cost_units INTEGER NOT NULL, energy_units INTEGER NOT NULL)""",
        "CREATE INDEX usage_tenant_time ON usage (tenant, time)",
        """CREATE TABLE audit (seq INTEGER PRIMARY KEY, time TEXT NOT NULL,
            request_id TEXT NOT NULL, tenant TEXT NOT NULL, key_id TEXT NOT NULL,
            model TEXT NOT NULL, action TEXT NOT NULL, outcome TEXT NOT NULL,
            status INTEGER NOT NULL, input_tokens INTEGER NOT NULL,
            output_tokens INTEGER NOT NULL, latency_ms REAL NOT NULL, reason TEXT NOT NULL,
            filter_verdict TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)""",
        "CREATE INDEX audit_tenant_seq ON audit (tenant, seq)",
        # The last link, written with every append: a cut-off tail shows in verify().
        """CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL, hash TEXT NOT NULL)""",
    ),
    (  # 2: retention. Expired per-request usage rolls up into daily rows (`requests` counts
        # what a row stands for); expired audit records are cut off the chain's start at a
        # checkpoint (last purged seq + hash), which verify() continues from.
        "ALTER TABLE usage ADD COLUMN requests INTEGER NOT NULL DEFAULT 1",
        """CREATE TABLE audit_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL, hash TEXT NOT NULL, time TEXT NOT NULL)""",
    ),
    (  # 3: keyed chain. Links from `keyed_from` on are HMACs with the audit key (older ones
        # stay plain SHA-256 and verify as before); `key_check` fingerprints that key.
        """CREATE TABLE audit_keying (id INTEGER PRIMARY KEY CHECK (id = 1),
            keyed_from INTEGER NOT NULL, key_check TEXT NOT NULL)""",
    ),
]


def migrate(conn: sqlite3.Connection) -> int:
    """Applies pending migrations in order, each in its own transaction; returns the version."""
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for sql in statements:
                conn.execute(sql)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = version
    return current


AUDIT_COLS = (
    "seq",
    "time",
    "request_id",
    "tenant",
    "key_id",
    "model",
    "action",
    "outcome",
    "status",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "reason",
    "filter_verdict",
    "prev_hash",
    "hash",
)
TENANT_COLS = (
    "name",
    "tier",
    "filter_enabled",
    "experimental_opt_in",
    "rotation_max_age_s",
    "rotation_overlap_s",
    "retention_days",
    "content_logging",
    "model_patterns",
    "created_at",
)
KEY_COLS = (
    "id",
    "tenant",
    "key_hash",
    "model_patterns",
    "admin",
    "created_at",
    "expires_at",
    "revoked_at",
    "predecessor_id",
    "successor_id",
    "last_used_at",
    "pending_secret",
)


def upsert_sql(table: str, cols: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(cols))
    return f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({marks})"


def tenant_row(t: Tenant) -> tuple:
    return (
        t.name,
        t.tier,
        int(t.filter_enabled),
        int(t.experimental_opt_in),
        t.rotation_max_age_s,
        t.rotation_overlap_s,
        t.retention_days,
        int(t.content_logging),
        json.dumps(list(t.model_patterns)),
        t.created_at,
    )


def tenant_of(row: tuple) -> Tenant:
    d = dict(zip(TENANT_COLS, row, strict=True))
    for flag in ("filter_enabled", "experimental_opt_in", "content_logging"):
        d[flag] = bool(d[flag])
    d["model_patterns"] = tuple(json.loads(d["model_patterns"]))
    return Tenant(**d)


def key_row(k: KeyRecord) -> tuple:
    patterns = None if k.model_patterns is None else json.dumps(list(k.model_patterns))
    return (
        k.id,
        k.tenant,
        k.key_hash,
        patterns,
        int(k.admin),
        k.created_at,
        k.expires_at,
        k.revoked_at,
        k.predecessor_id,
        k.successor_id,
        k.last_used_at,
        k.pending_secret,
    )


def key_of(row: tuple) -> KeyRecord:
    d = dict(zip(KEY_COLS, row, strict=True))
    d["admin"] = bool(d["admin"])
    d["model_patterns"] = (
        None if d["model_patterns"] is None else tuple(json.loads(d["model_patterns"]))
    )
    return KeyRecord(**d)


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def audit_of(row: tuple) -> AuditEntry:
    return AuditEntry(**dict(zip(AUDIT_COLS, row, strict=True)))


def last_seq(conn: sqlite3.Connection) -> int:
    # Portable SQL (SQLite and, through a qmark adapter, PostgreSQL verify with it).
    row = conn.execute(
        "SELECT (SELECT seq FROM audit_head WHERE id = 1), (SELECT max(seq) FROM audit)"
    ).fetchone()
    return max(row[0] or 0, row[1] or 0)


def audit_page_sql(
    tenant: str, since: str, until: str, after_seq: int, limit: int, mark: str
) -> tuple[str, list[Any]]:
    """The query and parameters of one audit page (records after `after_seq` in chain order),
    with `mark` as the driver's placeholder (SQLite `?`, PostgreSQL `%s`)."""
    where, args = [f"seq > {mark}", f"time >= {mark}"], [after_seq, since]
    if until:
        where.append(f"time < {mark}")
        args.append(until)
    if tenant:
        where.append(f"tenant = {mark}")
        args.append(tenant)
    sql = (
        f"SELECT {', '.join(AUDIT_COLS)} FROM audit WHERE {' AND '.join(where)} "
        f"ORDER BY seq LIMIT {mark}"
    )
    return sql, [*args, limit]
