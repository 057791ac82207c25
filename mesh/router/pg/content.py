"""The content log in PostgreSQL: `mesh.crypto.ContentLog`'s interface and sealing, in the
accounts database (table `content_log`, created by the migrations) instead of a file.

Each field is sealed (AES-256-GCM, per-tenant keys from the master keys) before it leaves
the process: only ciphertext reaches the database; tenant, request id and time stay in
clear for retention and lookups. Synchronous like ContentLog (`ContentRecorder` calls it
off the event loop) over a small psycopg pool that reconnects by itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from psycopg_pool import ConnectionPool

from mesh.crypto import Sealer
from mesh.router.pg.chain import no_nul
from mesh.router.pg.store import session_options

_UPSERT = (
    "INSERT INTO content_log (tenant, request_id, created_at, prompt, answer) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant, request_id) DO UPDATE SET "
    "created_at = EXCLUDED.created_at, prompt = EXCLUDED.prompt, answer = EXCLUDED.answer"
)


class PgContentLog:
    """`sealer`: the Sealer, or a function making it on first need (a retention run, which
    only deletes, then creates no master keys)."""

    def __init__(
        self, url: str, sealer: Sealer | Callable[[], Sealer], timeout_s: float = 5.0
    ) -> None:
        self._sealer = sealer
        self._sealer_lock = threading.Lock()
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=4,
            timeout=timeout_s,
            reconnect_timeout=max(1.0, timeout_s),
            check=ConnectionPool.check_connection,
            kwargs=session_options(timeout_s),
            name="llmaas-content",
            open=True,
        )
        self._pool.wait(timeout_s)

    @property
    def sealer(self) -> Sealer:
        with self._sealer_lock:  # callers run on several threads: one Sealer
            if not isinstance(self._sealer, Sealer):
                self._sealer = self._sealer()
            return self._sealer

    def append(self, tenant: str, request_id: str, prompt: str, answer: str) -> None:
        sealed_prompt = self.sealer.seal(tenant, f"{request_id}/prompt", prompt.encode())
        sealed_answer = self.sealer.seal(tenant, f"{request_id}/answer", answer.encode())
        with self._pool.connection() as conn:
            row = (no_nul(tenant), no_nul(request_id), time.time(), sealed_prompt, sealed_answer)
            conn.execute(_UPSERT, row)

    def read(self, tenant: str, request_id: str) -> tuple[str, str] | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT prompt, answer FROM content_log WHERE tenant = %s AND request_id = %s",
                (no_nul(tenant), no_nul(request_id)),
            ).fetchone()
        if row is None:
            return None
        prompt = self.sealer.open(tenant, f"{request_id}/prompt", bytes(row[0]))
        answer = self.sealer.open(tenant, f"{request_id}/answer", bytes(row[1]))
        return prompt.decode(), answer.decode()

    def purge_older_than(self, seconds: float, tenant: str | None = None) -> int:
        """Retention: deletes records older than `seconds` (one tenant or all); returns how many."""
        sql, args = "DELETE FROM content_log WHERE created_at < %s", [time.time() - seconds]
        if tenant is not None:
            sql, args = sql + " AND tenant = %s", [*args, no_nul(tenant)]
        with self._pool.connection() as conn:
            return conn.execute(sql, args).rowcount

    def close(self) -> None:
        self._pool.close()
