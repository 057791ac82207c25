"""The keyed audit chain in the database: its head, its keying and its outside anchor.

Lives on the writer thread: `setup` runs once when the store opens, `load_head` after a
failed batch (re-reads the head), `write_anchor` after every committed batch, `append`
inside a batch. The chain is keyed (HMAC with the audit key) and its head is anchored
outside the database (`AuditAnchor`): cutting the tail off the table, head row included,
shows in `verify_chain`.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from mesh.router import audit
from mesh.router.audit import AuditEntry, VerifyResult
from mesh.router.audit_anchor import Anchor, AnchorError, AuditAnchor
from mesh.router.store_schema import (
    AUDIT_COLS,
    UsageEntry,
    audit_of,
    day_of,
    last_seq,
    migrate,
    to_units,
)

log = logging.getLogger(__name__)


class AuditChain:
    """The chain's state (head, anchored head, keyed-from seq), touched on the writer thread."""

    def __init__(self, key: bytes, anchor: AuditAnchor, db_path: Path) -> None:
        self.key = key
        self.anchor = anchor
        self._db_path = db_path
        self._head: tuple[int, str] = (0, audit.GENESIS)
        self._anchored: tuple[int, str] | None = None
        self._keyed_from = 1
        self.anchor_problem = ""  # found when the head was loaded (logged as an error)
        self.start_event: tuple[str, str] | None = None  # (outcome, reason), chained by open()

    def setup(self, conn: sqlite3.Connection) -> None:
        migrate(conn)
        check = audit.key_check(self.key)
        row = conn.execute("SELECT keyed_from, key_check FROM audit_keying WHERE id = 1").fetchone()
        keyed_now = row is None
        if keyed_now:
            # First start with a key: links so far stay plain SHA-256; keyed from the next.
            last = last_seq(conn)
            conn.execute(
                "INSERT INTO audit_keying (id, keyed_from, key_check) VALUES (1, ?, ?)",
                (last + 1, check),
            )
            row = (last + 1, check)
            if last:
                note = f"audit chain keyed (HMAC) from seq {last + 1}; seq 1..{last} stay SHA-256"
                log.warning("%s", note)
                self.start_event = ("ok", note)
        if row[1] != check:
            raise RuntimeError(
                f"the audit key does not match the key the audit chain in {self._db_path} was "
                "written with: set LLMAAS_AUDIT_KEY to that key (or restore "
                "<run dir>/secrets/audit-key)"
            )
        self._keyed_from = row[0]
        self.load_head(conn, expect_anchor=not keyed_now)
        if self.anchor_problem and not keyed_now:
            self.start_event = ("error", self.anchor_problem)
        elif self._anchored is None:
            self.write_anchor()

    def load_head(self, conn: sqlite3.Connection, expect_anchor: bool = True) -> None:
        """The head appends continue from: the furthest of the head row, the table's last
        row and the anchor, so records written after a cut tail leave a visible gap."""
        row = conn.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
        candidates = [(row[0], row[1])] if row else []
        last = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        if last:
            candidates.append((last[0], last[1]))
        self.anchor_problem = ""
        try:
            anchor = self.anchor.read()
        except AnchorError as exc:
            anchor = None
            self.anchor_problem = f"audit anchor unusable: {exc}"
        if anchor is None and candidates and expect_anchor and not self.anchor_problem:
            self.anchor_problem = (
                f"audit anchor {self.anchor.path} missing: records up to seq "
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

    def write_anchor(self) -> None:
        if self._head != self._anchored:
            self.anchor.write(Anchor(*self._head, self._keyed_from))
            self._anchored = self._head

    def append(
        self, conn: sqlite3.Connection, entry: AuditEntry, usage: UsageEntry | None
    ) -> AuditEntry:
        seq, prev = self._head
        linked = audit.chain(entry, seq + 1, prev, self.key)
        conn.execute(
            f"INSERT INTO audit ({', '.join(AUDIT_COLS)}) VALUES ({', '.join('?' * len(AUDIT_COLS))})",
            tuple(getattr(linked, c) for c in AUDIT_COLS),
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
                    day_of(u.time),
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
        # savepoint); a failed batch commit re-reads the head from the database (setup).
        self._head = (linked.seq, linked.hash)
        return linked


def verify_chain(conn: sqlite3.Connection, key: bytes, anchor_file: AuditAnchor) -> VerifyResult:
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
    cursor = conn.execute(f"SELECT {', '.join(AUDIT_COLS)} FROM audit ORDER BY seq")

    def seq_of_hash(h: str) -> int | None:
        found = conn.execute("SELECT seq FROM audit WHERE hash = ?", (h,)).fetchone()
        return found[0] if found else None

    result = audit.verify(
        (audit_of(r) for r in cursor), head, seq_of_hash, start, key=key, keyed_from=keyed_from
    )
    if not result.ok:
        return result
    end = last_seq(conn) if result.checked else start[0]
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
