"""The audit chain in PostgreSQL: one chain for every router writing to the database.

An append runs in one transaction: take the chain's advisory lock (held to commit), read
the head, link the entries, insert them (and their usage), move `audit_head` and the keyed
anchor (`audit_anchor`, MACed with the audit key like the SQLite store's anchor file).
The head is read inside the lock on every append (nothing is cached), so routers take
turns and the chain has no fork and no gap. Same keyed-chain rules as the SQLite store
(mesh.router.audit_chain): links from `keyed_from` on are HMACs with the audit key; a
head cut off the table shows against the anchor, which cannot be moved without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

from psycopg import AsyncConnection

from mesh.router import audit
from mesh.router.audit import AuditEntry
from mesh.router.audit_anchor import Anchor, AnchorError
from mesh.router.pg.schema import CHAIN_LOCK
from mesh.router.store_schema import AUDIT_COLS, UsageEntry, day_of, to_units

log = logging.getLogger(__name__)

INSERT_AUDIT = (
    f"INSERT INTO audit ({', '.join(AUDIT_COLS)}) VALUES ({', '.join(['%s'] * len(AUDIT_COLS))})"
)
INSERT_USAGE = (
    "INSERT INTO usage (time, day, request_id, tenant, key_id, model, input_tokens, "
    "output_tokens, reasoning_tokens, system_tokens, cost_units, energy_units) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_HEAD_SQL = (
    "SELECT h.seq, h.hash, t.seq, t.hash, a.seq, a.hash, a.keyed_from, a.mac "
    "FROM (SELECT 1) one "
    "LEFT JOIN audit_head h ON h.id = 1 "
    "LEFT JOIN audit_anchor a ON a.id = 1 "
    "LEFT JOIN LATERAL (SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1) t ON true"
)
ANCHOR_WHERE = "the audit_anchor table"

Job = tuple[AuditEntry, UsageEntry | None]


def anchor_mac(key: bytes, seq: int, hash_: str, keyed_from: int) -> str:
    """The MAC of the SQLite store's anchor file (same message): anchors move between them."""
    msg = f"llmaas/audit-anchor/v1|{seq}|{hash_}|{keyed_from}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def checked_anchor(key: bytes, row: Sequence | None) -> Anchor | None:
    """(seq, hash, keyed_from, mac) -> Anchor; None for no row; AnchorError when not ours."""
    if row is None or row[0] is None:
        return None
    seq, hash_, keyed_from, mac = int(row[0]), str(row[1]), int(row[2]), str(row[3])
    if not hmac.compare_digest(mac, anchor_mac(key, seq, hash_, keyed_from)):
        raise AnchorError(f"{ANCHOR_WHERE} is not signed with this audit key (forged or moved)")
    return Anchor(seq, hash_, keyed_from)


def no_nul(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL: a string is stored, hashed and looked up with
    U+FFFD in its place (other values pass through)."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _no_nul(entry: AuditEntry) -> AuditEntry:
    changes = {
        f.name: no_nul(v)
        for f in fields(entry)
        if isinstance(v := getattr(entry, f.name), str) and "\x00" in v
    }
    return replace(entry, **changes) if changes else entry


_USAGE_TEXT = ("request_id", "tenant", "key_id", "model")
_USAGE_COUNTS = ("input_tokens", "output_tokens", "reasoning_tokens", "system_tokens")


def usage_params(u: UsageEntry) -> tuple:
    """INSERT_USAGE's parameters (money and energy as integer units, NUL replaced)."""
    text = (no_nul(getattr(u, f)) for f in _USAGE_TEXT)
    counts = (getattr(u, f) for f in _USAGE_COUNTS)
    return (u.time, day_of(u.time), *text, *counts, to_units(u.cost_eur), to_units(u.energy_kwh))


class PgChain:
    """Links and stores audit entries; `keyed_from` is read once by `setup` (it never moves)."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.keyed_from = 1
        self.start_event: tuple[str, str] | None = None  # (outcome, reason), chained by open()

    async def head(self, conn: AsyncConnection) -> tuple[int, str]:
        """Where appends continue: the furthest of the head row, the table's last row and a
        valid anchor, so records written after a cut tail leave a visible gap."""
        row = await (await conn.execute(_HEAD_SQL)).fetchone()
        assert row is not None
        candidates = [(s, h) for s, h in (row[0:2], row[2:4]) if s is not None]
        table_end = max((c[0] for c in candidates), default=0)
        try:
            anchor = checked_anchor(self.key, row[4:8])
        except AnchorError as exc:
            log.error("audit anchor ignored: %s", exc)
            anchor = None
        if anchor is not None:
            candidates.append((anchor.seq, anchor.hash))
            if anchor.seq > table_end:
                why = "the anchored head is past the table's end: records were cut off"
                log.error("audit chain TAMPERED (%s, %d > %d)", why, anchor.seq, table_end)
        return max(candidates, default=(0, audit.GENESIS))

    async def link(self, conn: AsyncConnection, jobs: Sequence[Job]) -> list[AuditEntry]:
        """Chains and inserts `jobs`; the caller holds the lock in an open transaction."""
        seq, prev = await self.head(conn)
        linked = []
        for entry, _usage in jobs:
            e = audit.chain(_no_nul(entry), seq + 1, prev, self.key)
            linked.append(e)
            seq, prev = e.seq, e.hash
        async with conn.cursor() as cur:
            await cur.executemany(
                INSERT_AUDIT, [tuple(getattr(e, c) for c in AUDIT_COLS) for e in linked]
            )
            usage = [usage_params(u) for _e, u in jobs if u is not None]
            if usage:
                await cur.executemany(INSERT_USAGE, usage)
        await self.move_head(conn, seq, prev)
        return linked

    async def move_head(self, conn: AsyncConnection, seq: int, hash_: str) -> None:
        await conn.execute(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
            (seq, hash_),
        )
        mac = anchor_mac(self.key, seq, hash_, self.keyed_from)
        await conn.execute(
            "INSERT INTO audit_anchor (id, seq, hash, keyed_from, mac) VALUES (1, %s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash, "
            "keyed_from = EXCLUDED.keyed_from, mac = EXCLUDED.mac",
            (seq, hash_, self.keyed_from, mac),
        )

    async def append(self, conn: AsyncConnection, jobs: Sequence[Job]) -> list[AuditEntry]:
        """One transaction under the chain lock: durable (committed) when this returns."""
        async with conn.transaction():
            await lock_chain(conn)
            return await self.link(conn, jobs)

    async def setup(self, conn: AsyncConnection, where: str) -> None:
        """Keys the chain on first start, refuses another audit key, checks the anchor."""
        check = audit.key_check(self.key)
        async with conn.transaction():
            await lock_chain(conn)
            cur = await conn.execute("SELECT keyed_from, key_check FROM audit_keying WHERE id = 1")
            row = await cur.fetchone()
            keyed_now = row is None
            if row is None:
                cur = await conn.execute(
                    "SELECT (SELECT seq FROM audit_head WHERE id = 1), (SELECT max(seq) FROM audit)"
                )
                ends = await cur.fetchone() or (None, None)
                last = max(ends[0] or 0, ends[1] or 0)
                row = (last + 1, check)
                await conn.execute(
                    "INSERT INTO audit_keying (id, keyed_from, key_check) VALUES (1, %s, %s)", row
                )
            if row[1] != check:
                raise RuntimeError(
                    f"the audit key does not match the key the audit chain in {where} was "
                    "written with: set LLMAAS_AUDIT_KEY to that key"
                )
            self.keyed_from = int(row[0])
            problem = await self._anchor_problem(conn)
            if problem and not keyed_now:
                log.error("%s", problem)
                self.start_event = ("error", problem)
            elif problem or keyed_now:
                await self.move_head(conn, *await self.head(conn))

    async def _anchor_problem(self, conn: AsyncConnection) -> str:
        cur = await conn.execute("SELECT seq, hash, keyed_from, mac FROM audit_anchor WHERE id = 1")
        try:
            anchor = checked_anchor(self.key, await cur.fetchone())
        except AnchorError as exc:
            return f"audit anchor unusable: {exc}"
        seq, _hash = await self.head(conn)
        if anchor is None and seq:
            return (
                f"audit anchor ({ANCHOR_WHERE}) missing: records up to seq {seq} cannot be "
                "vouched for against truncation"
            )
        return ""


async def lock_chain(conn: AsyncConnection) -> None:
    """The chain's lock, held until the transaction ends (a separate statement: the head is
    read after it, in a snapshot that sees the previous holder's commit)."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
