"""PostgreSQL for the store tests: a scratch database per test on the machine's shared
server (127.0.0.1:5432, trust auth, database `test`; LLMAAS_TEST_PG_URL overrides), dropped
afterwards. Tests skip, saying why, when the server does not answer."""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mesh.router.pg.store import PgStore
from mesh.router.store import SqliteStore, Store

ADMIN_URL = os.environ.get("LLMAAS_TEST_PG_URL", "postgresql://127.0.0.1:5432/test")
_answers: bool | None = None


def pg_answers() -> bool:
    global _answers
    if _answers is None:
        try:
            with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _answers = True
        except psycopg.Error:
            _answers = False
    return _answers


def require_pg() -> None:
    if not pg_answers():
        pytest.skip(f"PostgreSQL does not answer at {ADMIN_URL} (start it to run this test)")


def url_of(dbname: str, port: int | None = None) -> str:
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    host = info.get("host", "127.0.0.1")
    return f"postgresql://{host}:{port or info.get('port', 5432)}/{dbname}"


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A new empty database (llmaas_test_<random>); yields its name, drops it after."""
    require_pg()
    name = f"llmaas_test_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sql(dbname: str, statement: str, params: tuple = ()) -> list[tuple]:
    """Runs one statement in the scratch database behind the store's back (tamper tests)."""
    with psycopg.connect(url_of(dbname), autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


BACKENDS = ("sqlite", "postgresql")
AUDIT_KEY = b"k" * 32


class Backend:
    """One store backend under test: `make()` builds a store on the same data each time
    (a reopen), `tamper(sql)` edits that data behind the store's back ('?' placeholders)."""

    def __init__(self, kind: str, tmp_path: Path, dbname: str = "") -> None:
        self.kind = kind
        self.path = tmp_path / "a.sqlite3"
        self.dbname = dbname

    def make(self, audit_key: bytes = AUDIT_KEY) -> Store:
        if self.kind == "sqlite":
            return SqliteStore(self.path, audit_key=audit_key)
        return PgStore(url_of(self.dbname), audit_key=audit_key)

    def tamper(self, statement: str, params: tuple = ()) -> None:
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute(statement, params)
            conn.close()
        else:
            sql(self.dbname, statement.replace("?", "%s"), params)


@contextlib.contextmanager
def backend(kind: str, tmp_path: Path) -> Iterator[Backend]:
    if kind == "sqlite":
        yield Backend(kind, tmp_path)
        return
    with scratch_database() as name:
        yield Backend(kind, tmp_path, name)
