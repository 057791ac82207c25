"""The audit chain's head kept outside the database, in a small file MACed with the audit key."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path


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
