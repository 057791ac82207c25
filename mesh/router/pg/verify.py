"""`audit verify` against PostgreSQL: the SQLite store's `verify_chain`, run unchanged.

It runs on a plain (synchronous) connection in a thread, in one REPEATABLE READ READ ONLY
transaction: every read sees one snapshot, and since an append moves the records, the head
and the anchor in one transaction, routers appending meanwhile cannot make it disagree.
`verify_chain` speaks SQLite's `?` placeholders; `_QmarkConnection` hands its statements to
psycopg as server-side cursors (a long chain is streamed, not loaded whole).
"""

from __future__ import annotations

import itertools
from typing import Any

import psycopg

from mesh.router.audit import VerifyResult
from mesh.router.audit_anchor import Anchor
from mesh.router.audit_chain import verify_chain
from mesh.router.pg.chain import ANCHOR_WHERE, checked_anchor

_FETCH = 2000


class _QmarkConnection:
    """The `execute(sql, params)` that verify_chain uses, over a psycopg connection."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._conn = conn
        self._names = itertools.count()

    def execute(self, sql: str, params: tuple | list = ()) -> Any:
        cur = self._conn.cursor(name=f"verify_{next(self._names)}")
        cur.itersize = _FETCH
        cur.execute(sql.replace("?", "%s"), params)
        return cur


class _DbAnchor:
    """The anchor as verify_chain reads it (`read()`, `path`), from the audit_anchor row."""

    path = ANCHOR_WHERE

    def __init__(self, conn: psycopg.Connection, key: bytes) -> None:
        self._conn = conn
        self._key = key

    def read(self) -> Anchor | None:
        row = self._conn.execute(
            "SELECT seq, hash, keyed_from, mac FROM audit_anchor WHERE id = 1"
        ).fetchone()
        return checked_anchor(self._key, row)


def verify(url: str, key: bytes, connect_timeout_s: float) -> VerifyResult:
    with psycopg.connect(url, connect_timeout=max(1, round(connect_timeout_s))) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return verify_chain(_QmarkConnection(conn), key, _DbAnchor(conn, key))  # type: ignore[arg-type]
