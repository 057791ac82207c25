"""Account state behind one small `Store` protocol; `SqliteStore` is the embedded default,
`mesh.router.pg.store.PgStore` the PostgreSQL one (LLMAAS_DATABASE_URL; the choice is made
in mesh/router/store_backends.py).

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
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from mesh.router import audit
from mesh.router.audit import AuditEntry, VerifyResult
from mesh.router.audit_anchor import Anchor, AnchorError, AuditAnchor
from mesh.router.audit_chain import AuditChain, verify_chain
from mesh.router.keys import KeyRecord, load_audit_key
from mesh.router.store_queries import AccountRows, Reports
from mesh.router.store_retention import purge
from mesh.router.store_schema import (
    AUDIT_COLS,
    MIGRATIONS,
    UNITS,
    PurgeResult,
    UsageEntry,
    UsageRow,
    from_units,
    migrate,
    to_units,
)
from mesh.router.store_writer import DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_LOCK_ATTEMPTS, Writer
from mesh.router.tenants import Tenant

# The names this module has always offered (tests and tools import them from here).
_AUDIT_COLS = AUDIT_COLS
_Writer = Writer
__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_LOCK_ATTEMPTS",
    "MIGRATIONS",
    "UNITS",
    "Anchor",
    "AnchorError",
    "AuditAnchor",
    "PurgeResult",
    "SqliteStore",
    "Store",
    "UsageEntry",
    "UsageRow",
    "from_units",
    "migrate",
    "to_units",
]


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


def _private_file(path: Path) -> None:
    """Creates `path` 0600 if missing, tightens it if it exists (state holds billing data)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class SqliteStore(AccountRows, Reports):
    """The embedded Store: one SQLite file (0600), plus its audit anchor file.

    This class opens and closes the database and owns the audit chain's writes; the
    tenant/key rows and the read queries come from `AccountRows` and `Reports`.
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
        self._writer: Writer | None = None
        self._anchor: AuditAnchor | None = None
        self._chain: AuditChain | None = None  # touched on the writer thread only

    @property
    def audit_key(self) -> bytes:
        if self._audit_key is None:
            self._audit_key = load_audit_key(dict(os.environ), self.path.parent)
        return self._audit_key

    async def open(self) -> None:
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._anchor = AuditAnchor(self.anchor_path, self.audit_key)
        chain = self._chain = AuditChain(self.audit_key, self._anchor, self.path)
        for suffix in ("", "-wal", "-shm"):  # SQLite gives -wal/-shm the database's mode
            f = Path(f"{self.path}{suffix}")
            if not suffix or f.exists():
                _private_file(f)
        self._writer = Writer(str(self.path), self._busy_timeout_ms, self._lock_attempts)
        await asyncio.to_thread(
            self._writer.start, chain.setup, chain.load_head, chain.write_anchor
        )
        if chain.start_event is not None:
            # A permanent, chained trace of how this start found the chain.
            outcome, reason = chain.start_event
            chain.start_event = None
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

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return await self._writer.call(fn, *args)

    async def append(self, entry: AuditEntry, usage: UsageEntry | None) -> AuditEntry:
        """Chains and stores an audit entry (and its usage) durably; returns it chained."""
        assert self._chain is not None
        return await self._call(self._chain.append, entry, usage)

    async def verify_audit(self) -> VerifyResult:
        assert self._anchor is not None
        return await self._call(verify_chain, self.audit_key, self._anchor)

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
        assert self._chain is not None
        return await self._call(purge, self._chain, cutoffs, default_cutoff, now, content_purged)
