"""Which store the router keeps its accounts in: SQLite (the embedded default) or, when
LLMAAS_DATABASE_URL is a postgresql:// URL, PostgreSQL (shared by several routers).

LLMAAS_DATABASE_TIMEOUT_S (default 5): the longest a call waits for PostgreSQL before it
fails (the router then answers 503 until the database is back).
LLMAAS_DATABASE_POOL_SIZE (default 8): connections per router.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mesh.config import ConfigError, env
from mesh.router.store import SqliteStore, Store

SCHEMES = ("postgresql://", "postgres://")


def database_url(environ: Mapping[str, str]) -> str:
    """LLMAAS_DATABASE_URL, checked ('' when unset: the embedded SQLite store)."""
    url = (environ.get("LLMAAS_DATABASE_URL") or "").strip()
    if url and not url.startswith(SCHEMES):
        raise ConfigError(
            "LLMAAS_DATABASE_URL must be a postgresql:// URL (unset it for the embedded "
            f"SQLite store), got {url.split('://')[0]}://..."
        )
    return url


def build_store(environ: Mapping[str, str], sqlite_path: Path, audit_key: bytes) -> Store:
    url = database_url(environ)
    if not url:
        return SqliteStore(sqlite_path, audit_key=audit_key)
    from mesh.router.pg.store import PgStore  # noqa: PLC0415 - psycopg only when used

    return PgStore(
        url,
        audit_key=audit_key,
        timeout_s=env("LLMAAS_DATABASE_TIMEOUT_S", float, 5.0, dict(environ)),
        pool_size=env("LLMAAS_DATABASE_POOL_SIZE", int, 8, dict(environ)),
    )
