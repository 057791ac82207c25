"""API keys: format, keyed hashing, the server pepper, sealed successor secrets, rotation rules.

A key reads `sk-llmaas-<16 hex id>-<secret>`. The id part gives the public id `key_<hex>`
(O(1) lookup, safe to log); the database keeps only HMAC-SHA256(pepper, key). Keys handed
in from the environment (LLMAAS_ADMIN_KEY / LLMAAS_DEV_KEY) may have any shape: they are
found by their HMAC instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_PREFIX = "sk-llmaas-"
_KEY_RE = re.compile(r"^sk-llmaas-([0-9a-f]{16})-[A-Za-z0-9_-]{20,}$")
# Manual rotation with no overlap asked and none in the tenant's policy.
DEFAULT_MANUAL_OVERLAP_S = 3600


@dataclass(slots=True)
class KeyRecord:
    """One stored key; never holds the secret in clear."""

    id: str
    tenant: str
    key_hash: bytes
    model_patterns: tuple[str, ...] | None = None  # None: the tenant's patterns
    admin: bool = False
    created_at: float = 0.0
    expires_at: float = 0.0  # 0 = never
    revoked_at: float = 0.0  # 0 = active
    predecessor_id: str = ""
    successor_id: str = ""
    last_used_at: float = 0.0
    # Successor secret of an automatic rotation, AES-256-GCM sealed, until fetched once.
    pending_secret: bytes | None = None

    def is_expired(self, now: float) -> bool:
        return bool(self.expires_at) and now >= self.expires_at

    def is_usable(self, now: float) -> bool:
        return not self.revoked_at and not self.is_expired(now)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def format_key(key_id: str) -> str:
    """A fresh secret for `key_id` (shown once)."""
    return f"{KEY_PREFIX}{key_id.removeprefix('key_')}-{secrets.token_urlsafe(32)}"


def public_id(api_key: str) -> str:
    """The public id a presented key claims (for logs and audit), or '' if not ours."""
    m = _KEY_RE.match(api_key)
    return f"key_{m.group(1)}" if m else ""


class KeyHasher:
    """HMAC-SHA256 with the server pepper, plus the AES-GCM box for pending secrets."""

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 16:
            raise ValueError("the key pepper must be at least 16 bytes")
        self._pepper = pepper
        box_key = hmac.new(pepper, b"llmaas/successor-secret/v1", hashlib.sha256).digest()
        self._box = AESGCM(box_key)

    def digest(self, api_key: str) -> bytes:
        return hmac.new(self._pepper, api_key.encode(), hashlib.sha256).digest()

    def seal(self, secret: str, key_id: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._box.encrypt(nonce, secret.encode(), key_id.encode())

    def open(self, sealed: bytes, key_id: str) -> str:
        # The key id is the associated data: a sealed secret moved to another row fails.
        return self._box.decrypt(sealed[:12], sealed[12:], key_id.encode()).decode()


def _secret_file(path: Path) -> bytes:
    """The secret in `path`, created once (random, 0600, in a 0700 directory).

    Written whole to a temporary file, then hard-linked into place: a link either
    creates the name with the full secret or fails because another process (a second
    router starting on the same run directory) got there first, and then its
    complete secret is read. Creating `path` and writing it after would let the other
    process read it empty.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        return path.read_text().strip().encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp: 0600
            f.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):  # the other process's secret stands
            os.link(tmp, path)
    finally:
        os.unlink(tmp)
    return path.read_text().strip().encode()


def load_pepper(environ: dict[str, str], run_dir: Path) -> bytes:
    """LLMAAS_KEY_PEPPER, else `<run_dir>/secrets/pepper` (created 0600 on first start)."""
    if environ.get("LLMAAS_KEY_PEPPER"):
        return environ["LLMAAS_KEY_PEPPER"].encode()
    return _secret_file(run_dir / "secrets" / "pepper")


def load_audit_key(environ: dict[str, str], run_dir: Path) -> bytes:
    """The audit chain's HMAC key: LLMAAS_AUDIT_KEY, else `<run_dir>/secrets/audit-key`
    (created 0600 on first start). Keep it off the database host to make the chain proof
    against someone who can write both."""
    if environ.get("LLMAAS_AUDIT_KEY"):
        key = environ["LLMAAS_AUDIT_KEY"].encode()
        if len(key) < 16:
            raise ValueError("LLMAAS_AUDIT_KEY must be at least 16 characters")
        return key
    return _secret_file(run_dir / "secrets" / "audit-key")


def rotation_due_at(key: KeyRecord, max_age_s: int, overlap_s: int) -> float:
    """When a successor should be issued (0 = never): `overlap_s` before the key's end."""
    if max_age_s <= 0:
        return 0.0
    end = key.created_at + max_age_s
    if key.expires_at:
        end = min(end, key.expires_at)
    return max(key.created_at, end - overlap_s)


def rotation_due(key: KeyRecord, max_age_s: int, overlap_s: int, now: float) -> bool:
    if key.successor_id or not key.is_usable(now):
        return False
    due = rotation_due_at(key, max_age_s, overlap_s)
    return bool(due) and now >= due


def make_successor(
    old: KeyRecord, new_id: str, new_hash: bytes, overlap_s: int, now: float
) -> tuple[KeyRecord, KeyRecord]:
    """(old key retiring after the overlap, its successor with the same rights)."""
    lifetime = old.expires_at - old.created_at if old.expires_at else 0.0
    successor = KeyRecord(
        id=new_id,
        tenant=old.tenant,
        key_hash=new_hash,
        model_patterns=old.model_patterns,
        admin=old.admin,
        created_at=now,
        expires_at=now + lifetime if lifetime else 0.0,
        predecessor_id=old.id,
    )
    retire_at = now + overlap_s
    expires = min(old.expires_at, retire_at) if old.expires_at else retire_at
    return replace(old, successor_id=new_id, expires_at=expires), successor
