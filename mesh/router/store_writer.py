"""The database writer: one thread owns the SQLite connection; jobs run in order and
the jobs queued while a commit is in flight share the next commit (group commit).

The writer never dies: a failing batch fails its own callers' futures (they get the
error) and the thread goes on; `database is locked` past the busy timeout is retried a
bounded number of times, so no caller waits forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_MAX_BATCH = 128
DEFAULT_BUSY_TIMEOUT_MS = 5000
# A batch that finds the database locked past the busy timeout is tried this many times in
# all, then failed: callers get `database is locked` instead of waiting forever.
DEFAULT_LOCK_ATTEMPTS = 3
_SQLITE_BUSY = 5


class Writer:
    """One thread, one connection; jobs run in order and batches share one commit.

    `setup` runs once on the thread; `resync` after a failed batch (the in-memory state
    derived from the database, e.g. the audit head, is re-read); `after_commit` after every
    committed batch (an error there fails that batch's callers, the data stays committed).
    """

    def __init__(
        self,
        path: str,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        lock_attempts: int = DEFAULT_LOCK_ATTEMPTS,
    ) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._lock_attempts = max(1, lock_attempts)
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._resync: Callable[[sqlite3.Connection], None] = lambda _c: None
        self._after_commit: Callable[[], None] = lambda: None
        self._stale = False  # a resync failed: retried before the next batch

    def start(
        self,
        setup: Callable[[sqlite3.Connection], None],
        resync: Callable[[sqlite3.Connection], None] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._setup = setup
        self._resync = resync or setup
        self._after_commit = after_commit or (lambda: None)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if not self._thread.is_alive():
            raise sqlite3.OperationalError("the database writer is not running")
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._jobs.put((fn, args, fut, loop))
        return await fut

    def stop(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def _run(self) -> None:
        try:
            conn = self._connect()
            self._setup(conn)
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        while (job := self._jobs.get()) is not None:
            batch = [job]
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._jobs.put(None)
                    break
                batch.append(nxt)
            self._run_safely(conn, batch)
        conn.close()

    def _run_safely(self, conn: sqlite3.Connection, batch: list[Any]) -> None:
        """Runs one batch; whatever fails, every caller is answered and the thread lives."""
        try:
            if self._stale:
                self._resync(conn)
                self._stale = False
            outcomes = self._run_batch(conn, batch)
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of the batch
            log.error("database batch of %d job(s) failed: %s", len(batch), exc)
            self._recover(conn)
            outcomes = [(None, exc)] * len(batch)
        for (_fn, _args, fut, loop), (result, exc) in zip(batch, outcomes, strict=True):
            with contextlib.suppress(RuntimeError):  # the caller's loop is gone
                loop.call_soon_threadsafe(_settle, fut, result, exc)

    def _recover(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        try:
            self._resync(conn)
            self._stale = False
        except Exception as exc:  # noqa: BLE001 - retried before the next batch
            log.error("database resync failed (retried with the next write): %s", exc)
            self._stale = True

    def _begin(self, conn: sqlite3.Connection) -> None:
        for attempt in range(1, self._lock_attempts + 1):
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", _SQLITE_BUSY) & 0xFF == _SQLITE_BUSY
                if not busy or attempt == self._lock_attempts:
                    raise
                log.warning("database is locked (attempt %d of %d)", attempt, self._lock_attempts)

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[Any]
    ) -> list[tuple[Any, BaseException | None]]:
        outcomes: list[tuple[Any, BaseException | None]] = []
        self._begin(conn)
        for fn, args, _fut, _loop in batch:
            # A savepoint per job: one failing job does not spoil the others' writes.
            conn.execute("SAVEPOINT job")
            try:
                outcomes.append((fn(conn, *args), None))
                conn.execute("RELEASE job")
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                if not conn.in_transaction:
                    # SQLite rolled back the whole transaction (disk full, I/O error):
                    # the batch fails with this real cause.
                    raise
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                outcomes.append((None, exc))
        conn.execute("COMMIT")
        self._after_commit()
        return outcomes


def _settle(fut: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if fut.cancelled():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(result)
