"""Account state behind one small `Store` protocol; `SqliteStore` is the embedded default.

SQLite in WAL mode with synchronous=FULL: a record is on disk when `append` returns, so a
router killed with SIGKILL loses no record of a request it already answered. All database
work runs on one writer thread that owns the connection (nothing blocks the event loop);
jobs queued while a commit is in flight share the next commit (group commit), so fsyncs
do not serialise a busy router. Money and energy are stored as integers of 1e-12 (EUR,
kWh): exact sums, no float drift.

The writer never dies: a failing batch fails its own callers' futures (they get the
error) and the thread goes on; `database is locked` past the busy timeout is retried a
bounded number of times, so no caller waits forever. The audit chain is keyed (HMAC with
the audit key) and its head is anchored outside the database, in a small MACed file
rewritten after every committed batch (`AuditAnchor`): cutting the tail off the table,
head row included, shows in `verify_audit`. The database and its -wal/-shm files are 0600.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Protocol

from mesh.router import audit
from mesh.router.audit import AuditEntry, VerifyResult
from mesh.router.keys import KeyRecord, load_audit_key
from mesh.router.tenants import Tenant

log = logging.getLogger(__name__)

UNITS = Decimal(10) ** 12
_MAX_BATCH = 128
DEFAULT_BUSY_TIMEOUT_MS = 5000
# A batch that finds the database locked past the busy timeout is tried this many times in
# all, then failed: callers get `database is locked` instead of waiting forever.
DEFAULT_LOCK_ATTEMPTS = 3
_SQLITE_BUSY = 5


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


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def load_tenants(self) -> list[Tenant]: ...
    async def load_keys(self) -> list[KeyRecord]: ...
    async def save_tenant(self, tenant: Tenant) -> None: ...
    async def save_keys(self, keys: Sequence[KeyRecord]) -> None:
        """Upserts keys atomically (a rotation writes the old key and its successor)."""
        ...

    async def touch_keys(self, last_used: dict[str, float]) -> None: ...
    async def append(self, entry: AuditEntry, usage: UsageEntry | None) -> AuditEntry:
        """Chains and stores an audit entry (and its usage) durably; returns it chained."""
        ...

    async def usage(self, tenant: str, since: float, until: float) -> list[UsageRow]: ...
    async def month_spend(self, month_start: float) -> dict[str, Decimal]: ...
    async def audit(self, tenant: str, since: str, limit: int) -> list[AuditEntry]: ...
    async def verify_audit(self) -> VerifyResult: ...
    async def audit_page(
        self, tenant: str, since: str, until: str, after_seq: int, limit: int
    ) -> list[AuditEntry]: ...
    async def purge_expired(
        self,
        cutoffs: dict[str, float | None],
        default_cutoff: float | None,
        now: float,
        content_purged: int = 0,
    ) -> PurgeResult | None: ...


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


class _Writer:
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


_AUDIT_COLS = (
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
_TENANT_COLS = (
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
_KEY_COLS = (
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


def _upsert_sql(table: str, cols: tuple[str, ...]) -> str:
    marks = ", ".join("?" * len(cols))
    return f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}) VALUES ({marks})"


def _tenant_row(t: Tenant) -> tuple:
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


def _tenant_of(row: tuple) -> Tenant:
    d = dict(zip(_TENANT_COLS, row, strict=True))
    for flag in ("filter_enabled", "experimental_opt_in", "content_logging"):
        d[flag] = bool(d[flag])
    d["model_patterns"] = tuple(json.loads(d["model_patterns"]))
    return Tenant(**d)


def _key_row(k: KeyRecord) -> tuple:
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


def _key_of(row: tuple) -> KeyRecord:
    d = dict(zip(_KEY_COLS, row, strict=True))
    d["admin"] = bool(d["admin"])
    d["model_patterns"] = (
        None if d["model_patterns"] is None else tuple(json.loads(d["model_patterns"]))
    )
    return KeyRecord(**d)


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


class AnchorError(Exception):
    """The anchor file exists but is unreadable, malformed or not MACed with our key."""


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: str
    keyed_from: int


class AuditAnchor:
    """The chain head kept outside the database: one small file, MACed with the audit key.

    Rewritten atomically (temp file, fsync, rename) after every committed batch, so it is
    never ahead of the table; a crash between commit and rewrite leaves it one batch behind,
    which verify accepts. Someone who cuts the table's tail (head row included) cannot move
    the anchor back without the key. Not covered: restoring an older anchor file together
    with a matching older table (that needs a copy off the host). Whoever restores a
    database backup restores its anchor with it (`<db>.audit-anchor`), or verify reports
    the records after the backup as deleted, as they are.
    """

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key

    def _mac(self, seq: int, hash_: str, keyed_from: int) -> str:
        msg = f"llmaas/audit-anchor/v1|{seq}|{hash_}|{keyed_from}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def read(self) -> Anchor | None:
        """The anchor, None when there is no file; raises AnchorError when it is not ours."""
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AnchorError(f"cannot read {self.path}: {exc}") from exc
        try:
            d = json.loads(raw)
            anchor = Anchor(int(d["seq"]), str(d["hash"]), int(d["keyed_from"]))
            mac = str(d["mac"])
        except (ValueError, KeyError, TypeError) as exc:
            raise AnchorError(f"{self.path} is malformed") from exc
        if not hmac.compare_digest(mac, self._mac(anchor.seq, anchor.hash, anchor.keyed_from)):
            raise AnchorError(f"{self.path} is not signed with this audit key (forged or moved)")
        return anchor

    def write(self, anchor: Anchor) -> None:
        body = json.dumps(
            {
                "seq": anchor.seq,
                "hash": anchor.hash,
                "keyed_from": anchor.keyed_from,
                "mac": self._mac(anchor.seq, anchor.hash, anchor.keyed_from),
            }
        )
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)


def _private_file(path: Path) -> None:
    """Creates `path` 0600 if missing, tightens it if it exists (state holds billing data)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class SqliteStore:
    """The embedded Store: one SQLite file (0600), plus its audit anchor file.

    `audit_key`: the HMAC key of the audit chain (default: LLMAAS_AUDIT_KEY, else
    `<db dir>/secrets/audit-key`, created once, 0600; the router passes LLMAAS_AUDIT_KEY or
    `<run dir>/secrets/audit-key`).
    `anchor_path`: default `<db path>.audit-anchor`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        audit_key: bytes | None = None,
        anchor_path: str | Path | None = None,
        busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
        lock_attempts: int = DEFAULT_LOCK_ATTEMPTS,
    ) -> None:
        self.path = Path(path)
        self._audit_key = audit_key
        self.anchor_path = Path(anchor_path or f"{self.path}.audit-anchor")
        self._busy_timeout_ms = busy_timeout_ms
        self._lock_attempts = lock_attempts
        self._writer: _Writer | None = None
        # Touched on the writer thread only.
        self._head: tuple[int, str] = (0, audit.GENESIS)
        self._anchored: tuple[int, str] | None = None
        self._keyed_from = 1
        self._anchor: AuditAnchor | None = None
        self.anchor_problem = ""  # found when the head was loaded (logged as an error)
        self._start_event: tuple[str, str] | None = None  # (outcome, reason), chained by open()

    @property
    def audit_key(self) -> bytes:
        if self._audit_key is None:
            self._audit_key = load_audit_key(dict(os.environ), self.path.parent)
        return self._audit_key

    async def open(self) -> None:
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._anchor = AuditAnchor(self.anchor_path, self.audit_key)
        for suffix in ("", "-wal", "-shm"):  # SQLite gives -wal/-shm the database's mode
            f = Path(f"{self.path}{suffix}")
            if not suffix or f.exists():
                _private_file(f)
        self._writer = _Writer(str(self.path), self._busy_timeout_ms, self._lock_attempts)
        await asyncio.to_thread(
            self._writer.start, self._setup, self._load_head, self._write_anchor
        )
        if self._start_event is not None:
            # A permanent, chained trace of how this start found the chain.
            outcome, reason = self._start_event
            self._start_event = None
            await self.append(
                AuditEntry(
                    time=audit.iso_time(datetime.now(UTC).timestamp()),
                    request_id="",
                    tenant="",
                    key_id="",
                    model="",
                    action=audit.ANCHOR_ACTION,
                    outcome=outcome,
                    status=200 if outcome == "ok" else 500,
                    reason=f"{reason} (by the router)",
                ),
                None,
            )

    def _setup(self, conn: sqlite3.Connection) -> None:
        migrate(conn)
        check = audit.key_check(self.audit_key)
        row = conn.execute("SELECT keyed_from, key_check FROM audit_keying WHERE id = 1").fetchone()
        keyed_now = row is None
        if keyed_now:
            # First start with a key: links so far stay plain SHA-256; keyed from the next.
            last = _last_seq(conn)
            conn.execute(
                "INSERT INTO audit_keying (id, keyed_from, key_check) VALUES (1, ?, ?)",
                (last + 1, check),
            )
            row = (last + 1, check)
            if last:
                note = f"audit chain keyed (HMAC) from seq {last + 1}; seq 1..{last} stay SHA-256"
                log.warning("%s", note)
                self._start_event = ("ok", note)
        if row[1] != check:
            raise RuntimeError(
                f"the audit key does not match the key the audit chain in {self.path} was "
                "written with: set LLMAAS_AUDIT_KEY to that key (or restore "
                "<run dir>/secrets/audit-key)"
            )
        self._keyed_from = row[0]
        self._load_head(conn, expect_anchor=not keyed_now)
        if self.anchor_problem and not keyed_now:
            self._start_event = ("error", self.anchor_problem)
        elif self._anchored is None:
            self._write_anchor()

    def _load_head(self, conn: sqlite3.Connection, expect_anchor: bool = True) -> None:
        """The head appends continue from: the furthest of the head row, the table's last
        row and the anchor, so records written after a cut tail leave a visible gap."""
        row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        candidates = [(row[0], row[1])] if row else []
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        if last:
            candidates.append((last[0], last[1]))
        assert self._anchor is not None
        self.anchor_problem = ""
        try:
            anchor = self._anchor.read()
        except AnchorError as exc:
            anchor = None
            self.anchor_problem = f"audit anchor unusable: {exc}"
        if anchor is None and candidates and expect_anchor and not self.anchor_problem:
            self.anchor_problem = (
                f"audit anchor {self.anchor_path} missing: records up to seq "
                f"{max(candidates)[0]} cannot be vouched for against truncation"
            )
        if self.anchor_problem:
            log.error("%s", self.anchor_problem)
        table_end = max((c[0] for c in candidates), default=0)
        self._anchored = None
        if anchor is not None:
            candidates.append((anchor.seq, anchor.hash))
            self._anchored = (anchor.seq, anchor.hash)
            if anchor.seq > table_end:
                log.error(
                    "audit chain TAMPERED: the table ends at seq %d but the anchor says %d; "
                    "new records continue after seq %d (verify will show the gap)",
                    table_end,
                    anchor.seq,
                    anchor.seq,
                )
        self._head = max(candidates, default=(0, audit.GENESIS))

    def _write_anchor(self) -> None:
        if self._anchor is not None and self._head != self._anchored:
            self._anchor.write(Anchor(*self._head, self._keyed_from))
            self._anchored = self._head

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return await self._writer.call(fn, *args)

    async def load_tenants(self) -> list[Tenant]:
        rows = await self._call(
            lambda c: c.execute(f"SELECT {', '.join(_TENANT_COLS)} FROM tenants").fetchall()
        )
        return [_tenant_of(r) for r in rows]

    async def load_keys(self) -> list[KeyRecord]:
        rows = await self._call(
            lambda c: c.execute(f"SELECT {', '.join(_KEY_COLS)} FROM api_keys").fetchall()
        )
        return [_key_of(r) for r in rows]

    async def save_tenant(self, tenant: Tenant) -> None:
        await self._call(
            lambda c: c.execute(_upsert_sql("tenants", _TENANT_COLS), _tenant_row(tenant))
        )

    async def save_keys(self, keys: Sequence[KeyRecord]) -> None:
        rows = [_key_row(k) for k in keys]
        await self._call(lambda c: c.executemany(_upsert_sql("api_keys", _KEY_COLS), rows))

    async def touch_keys(self, last_used: dict[str, float]) -> None:
        rows = [(t, k) for k, t in last_used.items()]
        await self._call(
            lambda c: c.executemany(
                "UPDATE api_keys SET last_used_at = max(last_used_at, ?) WHERE id = ?", rows
            )
        )

    async def append(self, entry: AuditEntry, usage: UsageEntry | None) -> AuditEntry:
        return await self._call(self._append, entry, usage)

    def _append(
        self, conn: sqlite3.Connection, entry: AuditEntry, usage: UsageEntry | None
    ) -> AuditEntry:
        seq, prev = self._head
        linked = audit.chain(entry, seq + 1, prev, self.audit_key)
        conn.execute(
            f"INSERT INTO audit ({', '.join(_AUDIT_COLS)}) VALUES ({', '.join('?' * len(_AUDIT_COLS))})",
            tuple(getattr(linked, c) for c in _AUDIT_COLS),
        )
        conn.execute(
            "INSERT OR REPLACE INTO audit_head (id, seq, hash) VALUES (1, ?, ?)",
            (linked.seq, linked.hash),
        )
        if usage is not None:
            u = usage
            conn.execute(
                "INSERT INTO usage (time, day, request_id, tenant, key_id, model, input_tokens, "
                "output_tokens, reasoning_tokens, system_tokens, cost_units, energy_units) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    u.time,
                    _day(u.time),
                    u.request_id,
                    u.tenant,
                    u.key_id,
                    u.model,
                    u.input_tokens,
                    u.output_tokens,
                    u.reasoning_tokens,
                    u.system_tokens,
                    to_units(u.cost_eur),
                    to_units(u.energy_kwh),
                ),
            )
        # Advanced only once every statement succeeded (a failed job rolls back to its
        # savepoint); a failed batch commit re-reads the head from the database (_setup).
        self._head = (linked.seq, linked.hash)
        return linked

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
            f"SELECT {', '.join(_AUDIT_COLS)} FROM audit WHERE {' AND '.join(where)} "
            "ORDER BY seq DESC LIMIT ?"
        )
        rows = await self._call(lambda c: c.execute(sql, [*args, limit]).fetchall())
        return [_audit_of(r) for r in reversed(rows)]

    async def verify_audit(self) -> VerifyResult:
        assert self._anchor is not None
        return await self._call(_verify, self.audit_key, self._anchor)

    async def audit_page(
        self, tenant: str, since: str, until: str, after_seq: int, limit: int
    ) -> list[AuditEntry]:
        """Records after `after_seq` in chain order (exports page through with it)."""
        where, args = ["seq > ?", "time >= ?"], [after_seq, since]
        if until:
            where.append("time < ?")
            args.append(until)
        if tenant:
            where.append("tenant = ?")
            args.append(tenant)
        sql = (
            f"SELECT {', '.join(_AUDIT_COLS)} FROM audit WHERE {' AND '.join(where)} "
            "ORDER BY seq LIMIT ?"
        )
        rows = await self._call(lambda c: c.execute(sql, [*args, limit]).fetchall())
        return [_audit_of(r) for r in rows]

    async def purge_expired(
        self,
        cutoffs: dict[str, float | None],
        default_cutoff: float | None,
        now: float,
        content_purged: int = 0,
    ) -> PurgeResult | None:
        """Retention, in one transaction with its own audit record (None: nothing expired).

        `cutoffs`: per tenant, records older than this timestamp expire (None: kept
        forever); `default_cutoff` applies to records of no (or an unknown) tenant.
        Usage: per-request rows of a tenant older than its cutoff roll up into one row per
        model and day (totals and request counts stay exact; request ids and keys go).
        Audit: the longest run of expired records at the start of the chain is deleted and
        a checkpoint (its last seq + hash) stored; a record that must be kept stops the run.
        """
        return await self._call(self._purge, cutoffs, default_cutoff, now, content_purged)

    def _purge(
        self,
        conn: sqlite3.Connection,
        cutoffs: dict[str, float | None],
        default_cutoff: float | None,
        now: float,
        content_purged: int,
    ) -> PurgeResult | None:
        usage_rows = sum(
            _roll_up_usage(conn, tenant, cutoff) for tenant, cutoff in cutoffs.items() if cutoff
        )
        iso_cutoffs = {t: (audit.iso_time(c) if c else None) for t, c in cutoffs.items()}
        iso_default = audit.iso_time(default_cutoff) if default_cutoff else None
        row = conn.execute("SELECT seq, hash FROM audit_checkpoint WHERE id = 1").fetchone()
        checkpoint = (row[0], row[1]) if row else (0, audit.GENESIS)
        last: tuple[int, str] | None = None
        cursor = conn.execute(
            "SELECT seq, hash, tenant, time FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
            (checkpoint[0], _PURGE_BATCH),
        ).fetchall()
        for seq, hash_, tenant, time_ in cursor:
            cutoff = iso_cutoffs.get(tenant, iso_default)
            if cutoff is None or time_ >= cutoff:
                break
            last = (seq, hash_)
        audit_records = 0
        if last is not None:
            audit_records = conn.execute("DELETE FROM audit WHERE seq <= ?", (last[0],)).rowcount
            conn.execute(
                "INSERT OR REPLACE INTO audit_checkpoint (id, seq, hash, time) VALUES (1, ?, ?, ?)",
                (*last, audit.iso_time(now)),
            )
            checkpoint = last
        if not (audit_records or usage_rows or content_purged):
            return None
        kept = ", ".join(
            f"{t}={round((now - c) / 86400)}d" for t, c in sorted(cutoffs.items()) if c
        )
        entry = AuditEntry(
            time=audit.iso_time(now),
            request_id="",
            tenant="",
            key_id="",
            model="",
            action=audit.PURGE_ACTION,
            outcome="ok",
            status=200,
            reason=(
                f"{audit.checkpoint_reason(*checkpoint)}; audit_records={audit_records} "
                f"usage_rows={usage_rows} content_records={content_purged}; "
                f"retention {kept or 'platform default only'} (by the router)"
            ),
        )
        linked = self._append(conn, entry, None)
        return PurgeResult(audit_records, usage_rows, content_purged, checkpoint, linked)


_PURGE_BATCH = 50_000


def _roll_up_usage(conn: sqlite3.Connection, tenant: str, cutoff: float) -> int:
    """Replaces a tenant's per-request usage rows older than `cutoff` by daily totals."""
    detail = "tenant = ? AND time < ? AND request_id != ''"
    conn.execute(
        "INSERT INTO usage (time, day, request_id, tenant, key_id, model, input_tokens, "
        "output_tokens, reasoning_tokens, system_tokens, cost_units, energy_units, requests) "
        "SELECT min(time), day, '', tenant, '', model, sum(input_tokens), sum(output_tokens), "
        "sum(reasoning_tokens), sum(system_tokens), sum(cost_units), sum(energy_units), "
        f"sum(requests) FROM usage WHERE {detail} GROUP BY day, model",
        (tenant, cutoff),
    )
    return conn.execute(f"DELETE FROM usage WHERE {detail}", (tenant, cutoff)).rowcount


def _audit_of(row: tuple) -> AuditEntry:
    return AuditEntry(**dict(zip(_AUDIT_COLS, row, strict=True)))


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT max(coalesce((SELECT seq FROM audit_head WHERE id = 1), 0), "
        "coalesce((SELECT max(seq) FROM audit), 0))"
    ).fetchone()
    return row[0] or 0


def _verify(conn: sqlite3.Connection, key: bytes, anchor_file: AuditAnchor) -> VerifyResult:
    row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    head = (row[0], row[1]) if row else None
    row = conn.execute("SELECT seq, hash FROM audit_checkpoint WHERE id = 1").fetchone()
    start = (row[0], row[1]) if row else (0, audit.GENESIS)
    keying = conn.execute("SELECT keyed_from, key_check FROM audit_keying WHERE id = 1").fetchone()

    def broken(seq: int, problem: str, checked: int = 0) -> VerifyResult:
        return VerifyResult(False, checked, seq, problem, start[0])

    if keying is None:
        return broken(1, "keying: the audit_keying row is missing (removed to pass off links)")
    keyed_from, check = keying
    if check != audit.key_check(key):
        return broken(
            keyed_from, "key: the chain was written with another audit key (LLMAAS_AUDIT_KEY)"
        )
    try:
        anchor = anchor_file.read()
    except AnchorError as exc:
        return broken(start[0] + 1, f"anchor: {exc}")
    if anchor is not None and anchor.keyed_from != keyed_from:
        return broken(
            min(anchor.keyed_from, keyed_from),
            f"keying: the chain says keyed from seq {keyed_from}, the anchor {anchor.keyed_from}",
        )
    cursor = conn.execute(f"SELECT {', '.join(_AUDIT_COLS)} FROM audit ORDER BY seq")

    def seq_of_hash(h: str) -> int | None:
        found = conn.execute("SELECT seq FROM audit WHERE hash = ?", (h,)).fetchone()
        return found[0] if found else None

    result = audit.verify(
        (_audit_of(r) for r in cursor), head, seq_of_hash, start, key=key, keyed_from=keyed_from
    )
    if not result.ok:
        return result
    end = _last_seq(conn) if result.checked else start[0]
    if anchor is None:
        if end > start[0]:
            return broken(
                end,
                f"anchor: {anchor_file.path} is missing; a cut tail cannot be ruled out",
                result.checked,
            )
    elif anchor.seq > end:
        return broken(
            end + 1,
            f"deleted: the chain ends at seq {end} but the anchor (outside the database) "
            f"says seq {anchor.seq}",
            result.checked,
        )
    elif anchor.seq > start[0]:
        at = conn.execute("SELECT hash FROM audit WHERE seq = ?", (anchor.seq,)).fetchone()
        if at is None or at[0] != anchor.hash:
            return broken(
                anchor.seq,
                f"rewritten: seq {anchor.seq} does not match the anchored hash",
                result.checked,
            )
    # The checkpoint itself must be the one the last (chained) purge record names: moving
    # it to hide more deleted records, or dropping it, shows here.
    purge = conn.execute(
        "SELECT seq, reason FROM audit WHERE action = ? ORDER BY seq DESC LIMIT 1",
        (audit.PURGE_ACTION,),
    ).fetchone()
    named = (audit.parse_checkpoint(purge[1]) if purge else None) or (0, audit.GENESIS)
    if named != start:
        where = (
            f"the purge at seq {purge[0]} names seq {named[0]}" if purge else "no purge names it"
        )
        return VerifyResult(
            False,
            result.checked,
            purge[0] if purge else start[0] + 1,
            f"checkpoint: the chain starts after seq {start[0]} but {where}",
            start[0],
        )
    return result
