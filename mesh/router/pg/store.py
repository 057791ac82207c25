"""`PgStore`: the Store protocol on PostgreSQL (LLMAAS_DATABASE_URL=postgresql://...).

Same semantics as `SqliteStore` and the same durability promise: `append` returns once its
transaction is committed (PostgreSQL's synchronous commit: on disk). Appends queued while
a transaction is in flight share the next one (group commit, `_Appender`); a batch that
fails for another reason than the connection is retried one job at a time, so one bad
record does not fail the others. The connection pool (psycopg_pool) reconnects by itself:
while PostgreSQL cannot be reached every call fails within `timeout_s` with
`StoreUnavailable` (the router then refuses requests 503, see mesh.router.recording) and
the next call after it is back succeeds, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from mesh.aio import cancel_and_wait
from mesh.errors import Unavailable
from mesh.router import audit
from mesh.router.audit import AuditEntry, VerifyResult
from mesh.router.pg import verify
from mesh.router.pg.chain import Job, PgChain, no_nul
from mesh.router.pg.queries import PgAccountRows, PgReports
from mesh.router.pg.retention import purge
from mesh.router.pg.schema import migrate
from mesh.router.store_schema import PurgeResult, UsageEntry

log = logging.getLogger(__name__)

T = TypeVar("T")
_MAX_BATCH = 128
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_POOL_SIZE = 8


class StoreUnavailable(Unavailable):
    """PostgreSQL cannot be reached (or did not answer in time); nothing was committed
    that the caller was told about. A 503 wherever it reaches a caller (admin calls too)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="database_unavailable", retry_after=2.0)


def describe(url: str) -> str:
    """host:port/dbname of a connection URL, without user or password (for messages)."""
    try:
        d = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable LLMAAS_DATABASE_URL)"
    return f"{d.get('host', 'localhost')}:{d.get('port', 5432)}/{d.get('dbname', '')}"


def session_options(timeout_s: float) -> dict[str, Any]:
    """Connection settings. A commit returns once it is on disk, whatever the server's
    default (synchronous_commit on: the durability promise). One lost router cannot stall
    the others: a session idle inside a transaction (a router cut off while it holds the
    chain's lock) is ended by the server, waiting for a lock fails after `timeout_s`, and
    keepalives find a dead peer."""
    ms = max(1000, round(timeout_s * 1000))
    return {
        "autocommit": True,
        "connect_timeout": max(1, round(timeout_s)),
        "options": (
            f"-c synchronous_commit=on -c idle_in_transaction_session_timeout={2 * ms} "
            f"-c lock_timeout={ms}"
        ),
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }


class _Appender:
    """Group commit: one task drains queued appends into shared transactions."""

    def __init__(self, write: Callable[[list[Job]], Awaitable[list[AuditEntry]]]) -> None:
        self._write = write
        self._queue: asyncio.Queue[tuple[Job, asyncio.Future]] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="pg-audit-appender")

    async def append(self, job: Job) -> AuditEntry:
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((job, fut))
        return await fut

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        while not self._queue.empty():
            _job, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(StoreUnavailable("the store is closing"))

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                outcomes = await self._commit([job for job, _f in batch])
            except asyncio.CancelledError:
                for _job, fut in batch:
                    if not fut.done():
                        fut.set_exception(StoreUnavailable("the store is closing"))
                raise
            for (_job, fut), outcome in zip(batch, outcomes, strict=True):
                if fut.done():
                    continue
                if isinstance(outcome, BaseException):
                    fut.set_exception(outcome)
                else:
                    fut.set_result(outcome)

    async def _commit(self, jobs: list[Job]) -> list[AuditEntry | BaseException]:
        try:
            return list(await self._write(jobs))
        except StoreUnavailable as exc:
            return [exc] * len(jobs)
        except Exception as exc:  # noqa: BLE001 - retried alone: one bad job spoils nothing
            if len(jobs) == 1:
                return [exc]
        outcomes: list[AuditEntry | BaseException] = []
        for job in jobs:
            try:
                outcomes.extend(await self._write([job]))
            except Exception as exc:  # noqa: BLE001 - handed to this job's caller
                outcomes.append(exc)
        return outcomes


class PgStore(PgAccountRows, PgReports):
    """The Store on PostgreSQL: a connection pool, migrations at open, one audit chain.

    `audit_key`: the chain's HMAC key (every router on the database needs the same one);
    `timeout_s`: the longest any call waits for a connection or an answer.
    """

    def __init__(
        self,
        url: str,
        *,
        audit_key: bytes,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        pool_size: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.url = url
        self.where = describe(url)
        self.audit_key = audit_key
        self.timeout_s = timeout_s
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._chain = PgChain(audit_key)
        self._appender: _Appender | None = None

    async def open(self) -> None:
        try:  # one direct connection first: its error says why (the pool's only "timeout")
            probe = await psycopg.AsyncConnection.connect(
                self.url, **session_options(self.timeout_s)
            )
        except psycopg.OperationalError as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StoreUnavailable(f"PostgreSQL at {self.where} cannot be used: {reason}") from exc
        await probe.close()
        pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            timeout=self.timeout_s,
            # Reconnection gives up soon, so the next call after an outage tries at once
            # (psycopg_pool's backoff would otherwise delay recovery to minutes).
            reconnect_timeout=max(1.0, self.timeout_s),
            check=AsyncConnectionPool.check_connection,
            kwargs=session_options(self.timeout_s),
            name="llmaas-store",
        )
        try:
            await pool.open(wait=True, timeout=self.timeout_s)
        except PoolTimeout as exc:
            await pool.close()
            raise StoreUnavailable(f"PostgreSQL at {self.where} cannot be reached: {exc}") from exc
        self._pool = pool
        try:
            await self._use(migrate, bounded=False)
            await self._use(lambda c: self._chain.setup(c, self.where), bounded=False)
        except BaseException:
            self._pool = None
            await pool.close()
            raise
        self._appender = _Appender(self._append_batch)
        if self._chain.start_event is not None:
            outcome, reason = self._chain.start_event
            self._chain.start_event = None
            # A permanent, chained trace of how this start found the chain (no request,
            # tenant, key or model: time, four blanks, then action, outcome, status).
            now = audit.iso_time(datetime.now(UTC).timestamp())
            status = 200 if outcome == "ok" else 500
            event = AuditEntry(now, "", "", "", "", audit.ANCHOR_ACTION, outcome, status)
            await self.append(replace(event, reason=f"{reason} (by the router)"), None)

    async def close(self) -> None:
        if self._appender is not None:
            await self._appender.close()
            self._appender = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _use(
        self, fn: Callable[[AsyncConnection], Awaitable[T]], *, bounded: bool = True
    ) -> T:
        """Runs `fn` on a pooled connection, `bounded` by twice `timeout_s` (long jobs such
        as migrations and retention are not); a lost or unreachable database raises
        StoreUnavailable (its other errors pass through)."""
        if self._pool is None:
            raise RuntimeError("store is not open")
        try:
            async with asyncio.timeout(self.timeout_s * 2 if bounded else None):
                async with self._pool.connection() as conn:
                    return await fn(conn)
        except (PoolTimeout, psycopg.OperationalError, TimeoutError) as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailable(f"PostgreSQL at {self.where} unavailable: {detail}") from exc

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        async def run(conn: AsyncConnection) -> list[tuple]:
            return await (await conn.execute(sql, [no_nul(v) for v in params])).fetchall()

        return await self._use(run)

    async def _write_many(self, sql: str, rows: Sequence[tuple]) -> None:
        async def run(conn: AsyncConnection) -> None:
            async with conn.transaction(), conn.cursor() as cur:
                await cur.executemany(sql, [tuple(no_nul(v) for v in row) for row in rows])

        if rows:
            await self._use(run)

    async def _append_batch(self, jobs: list[Job]) -> list[AuditEntry]:
        return await self._use(lambda c: self._chain.append(c, jobs))

    async def append(self, entry: AuditEntry, usage: UsageEntry | None) -> AuditEntry:
        """Chains and stores an audit entry (and its usage); committed when this returns."""
        if self._appender is None:
            raise RuntimeError("store is not open")
        return await self._appender.append((entry, usage))

    async def verify_audit(self) -> VerifyResult:
        try:
            return await asyncio.to_thread(verify.verify, self.url, self.audit_key, self.timeout_s)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"PostgreSQL at {self.where} unavailable: {exc}") from exc

    async def purge_expired(
        self,
        cutoffs: dict[str, float | None],
        default_cutoff: float | None,
        now: float,
        content_purged: int = 0,
    ) -> PurgeResult | None:
        """Retention, in one transaction with its own audit record (None: nothing expired);
        the rules of `SqliteStore.purge_expired`."""
        return await self._use(
            lambda c: purge(c, self._chain, cutoffs, default_cutoff, now, content_purged),
            bounded=False,
        )
