"""The PostgreSQL schema: ordered SQL files in `migrations/`, applied at start.

`NNNN_name.sql` files run in version order, each pending one once, recorded in
`schema_version`. The whole run holds a transaction-scoped advisory lock, so routers that
start together neither race nor apply a file twice; DDL is transactional in PostgreSQL, so
a failing file leaves the schema where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from psycopg import AsyncConnection

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Advisory lock keys (one 64-bit namespace per database): schema changes, chain appends,
# retention runs.
MIGRATION_LOCK = 0x6C6C6D61_61730001  # "llmaas" 1
CHAIN_LOCK = 0x6C6C6D61_61730002
RETENTION_LOCK = 0x6C6C6D61_61730003


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(folder: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; versions must run 1, 2, 3... without a gap."""
    found = []
    for path in sorted(folder.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append(Migration(int(number), name, path.read_text()))
    found.sort(key=lambda m: m.version)
    if not found or [m.version for m in found] != list(range(1, len(found) + 1)):
        # An install without the package's .sql files must not start on an empty schema.
        raise RuntimeError(f"migrations in {folder} missing or not numbered 1..{len(found)}")
    return found


async def migrate(conn: AsyncConnection) -> int:
    """Applies pending migrations (one transaction, under the lock); returns the version."""
    wanted = migrations()
    async with conn.transaction():
        # A start may wait for another router's migration, however long it takes (the
        # sessions' lock_timeout is for the request path).
        await conn.execute("SET LOCAL lock_timeout = 0")
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        cur = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
        row = await cur.fetchone()
        current = int(row[0]) if row else 0
        if current > len(wanted):
            raise RuntimeError(
                f"the database schema is at version {current}, newer than this router knows "
                f"({len(wanted)}): upgrade the router"
            )
        for m in wanted[current:]:
            await conn.execute(m.sql)  # no parameters: several statements in one go
            await conn.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)", (m.version, m.name)
            )
    return len(wanted)
