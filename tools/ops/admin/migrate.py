"""`llmaas-admin migrate`: moves an embedded SQLite store into PostgreSQL, chain intact.

Reads the SQLite accounts database (read-only) and its content log; refuses a source whose
audit chain does not verify (with the audit key and the anchor file next to it) and a
target that already holds records. Then, in ONE PostgreSQL transaction under the chain's
lock: tenants, keys, usage (retention roll-ups included), every audit record with its
seq and hashes, the chain's head, retention checkpoint and keying, the keyed anchor, and
the sealed content records (ciphertext copied as is: the master keys still open them).
Finally the chain is verified in PostgreSQL; the routers then run with
LLMAAS_DATABASE_URL and the same LLMAAS_AUDIT_KEY and master keys.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import psycopg

from mesh.config import run_dir
from mesh.router.audit_anchor import AuditAnchor
from mesh.router.audit_chain import verify_chain
from mesh.router.keys import load_audit_key
from mesh.router.pg import verify as pg_verify
from mesh.router.pg.chain import anchor_mac, lock_chain
from mesh.router.pg.schema import migrate as migrate_schema
from mesh.router.pg.store import describe
from mesh.router.store_backends import database_url
from mesh.router.store_schema import AUDIT_COLS, KEY_COLS, MIGRATIONS, TENANT_COLS

_USAGE_COLS = (
    "time, day, request_id, tenant, key_id, model, input_tokens, output_tokens, "
    "reasoning_tokens, system_tokens, cost_units, energy_units, requests"
)
_CONTENT_COLS = "tenant, request_id, created_at, prompt, answer"
# Tables copied row for row (same columns on both sides), in this order.
_TABLES = (
    ("tenants", ", ".join(TENANT_COLS)),
    ("api_keys", ", ".join(KEY_COLS)),
    ("usage", _USAGE_COLS),
    ("audit", ", ".join(AUDIT_COLS)),
    ("audit_head", "id, seq, hash"),
    ("audit_checkpoint", "id, seq, hash, time"),
    ("audit_keying", "id, keyed_from, key_check"),
)


class MigrateError(Exception):
    """Why nothing was migrated (one line for the operator)."""


@dataclass(frozen=True, slots=True)
class Source:
    accounts: Path
    content: Path | None
    anchor: Path
    key: bytes


def source_from_env(accounts: str, content: str, environ: dict[str, str]) -> Source:
    runs = run_dir(environ)
    db = Path(accounts or environ.get("LLMAAS_ACCOUNTS_DB") or runs / "accounts.sqlite3")
    if not db.exists():
        raise MigrateError(f"no SQLite accounts database at {db} (pass --from)")
    content_db = Path(content or environ.get("LLMAAS_CONTENT_DB") or runs / "content.sqlite3")
    if not environ.get("LLMAAS_AUDIT_KEY") and not (runs / "secrets" / "audit-key").exists():
        raise MigrateError(
            "no audit key: set LLMAAS_AUDIT_KEY (or run where <run dir>/secrets/audit-key is)"
        )
    return Source(
        db,
        content_db if content_db.exists() else None,
        Path(f"{db}.audit-anchor"),
        load_audit_key(environ, runs),
    )


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def check_source(src: Source) -> tuple[int, int]:
    """(records verified, checkpoint seq) of the source chain; MigrateError when it fails."""
    conn = _read_only(src.accounts)
    try:
        version = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        if version != len(MIGRATIONS):
            raise MigrateError(
                f"{src.accounts} is at schema version {version}, not {len(MIGRATIONS)}: start "
                "a router of this version on it once (it upgrades the file), then migrate"
            )
        result = verify_chain(conn, src.key, AuditAnchor(src.anchor, src.key))
    finally:
        conn.close()
    if not result.ok:
        raise MigrateError(
            f"the audit chain in {src.accounts} does not verify (seq {result.first_bad_seq}: "
            f"{result.problem}); nothing migrated"
        )
    return result.checked, result.start_seq


async def copy_into(src: Source, url: str) -> dict[str, int]:
    """Copies every table in one transaction; returns rows per table."""
    counts: dict[str, int] = {}
    accounts = _read_only(src.accounts)
    content = _read_only(src.content) if src.content else None
    try:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await migrate_schema(conn)
            async with conn.transaction():
                await lock_chain(conn)
                await _require_empty(conn, url)
                for table, cols in _TABLES:
                    rows = accounts.execute(f"SELECT {cols} FROM {table}")
                    counts[table] = await _copy(conn, table, cols, rows)
                head = accounts.execute("SELECT seq, hash FROM audit_head").fetchone()
                keying = accounts.execute("SELECT keyed_from FROM audit_keying").fetchone()
                if head is not None and keying is not None:
                    mac = anchor_mac(src.key, head[0], head[1], keying[0])
                    await conn.execute(
                        "INSERT INTO audit_anchor (id, seq, hash, keyed_from, mac) "
                        "VALUES (1, %s, %s, %s, %s)",
                        (head[0], head[1], keying[0], mac),
                    )
                if content is not None:
                    rows = content.execute(f"SELECT {_CONTENT_COLS} FROM content_log")
                    counts["content_log"] = await _copy(conn, "content_log", _CONTENT_COLS, rows)
    finally:
        accounts.close()
        if content is not None:
            content.close()
    return counts


async def _require_empty(conn: psycopg.AsyncConnection, url: str) -> None:
    for table in ("tenants", "api_keys", "usage", "audit", "audit_keying", "content_log"):
        cur = await conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
        row = await cur.fetchone()
        if row and row[0]:
            raise MigrateError(
                f"{describe(url)} already holds records (table {table}): migrate only into "
                "an empty database"
            )


async def _copy(conn: psycopg.AsyncConnection, table: str, cols: str, rows: sqlite3.Cursor) -> int:
    n = 0
    async with conn.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            await copy.write_row(row)
            n += 1
    return n


def migrate(
    accounts: str = "", content: str = "", to: str = "", environ: dict[str, str] | None = None
) -> str:
    """The whole migration; returns the summary line (MigrateError: nothing was changed)."""
    environ = dict(os.environ if environ is None else environ)
    url = to or database_url(environ)
    if not url:
        raise MigrateError("no target: pass --to postgresql://... or set LLMAAS_DATABASE_URL")
    database_url({"LLMAAS_DATABASE_URL": url})  # a postgresql:// URL, or ConfigError
    src = source_from_env(accounts, content, environ)
    checked, start = check_source(src)
    try:
        counts = asyncio.run(copy_into(src, url))
        result = pg_verify.verify(url, src.key, 10.0)
    except psycopg.Error as exc:
        raise MigrateError(f"PostgreSQL at {describe(url)}: {exc}") from exc
    if not result.ok or result.checked != checked:
        raise MigrateError(
            f"the migrated chain does not verify in PostgreSQL: {result.problem or result}"
        )
    since = f" from checkpoint seq {start}" if start else ""
    return (
        f"migrated {src.accounts} into {describe(url)}: {counts['tenants']} tenants, "
        f"{counts['api_keys']} keys, {counts['usage']} usage rows, {counts['audit']} audit "
        f"records (chain verified in PostgreSQL: {result.checked} records{since}), "
        f"{counts.get('content_log', 0)} content records"
    )
