"""Encryption at rest for tenant content: AES-256-GCM with versioned master keys.

Keys
  Master keys are 32 random bytes, versioned. Sources, first match wins:
    - `LLMAAS_MASTER_KEY_FILE`: a JSON keyring `{"active": 2, "keys": {"1": "<b64>", "2": "<b64>"}}`;
    - `LLMAAS_MASTER_KEY`: one base64 key (version 1), or `"1:<b64>,2:<b64>"` (newest active);
    - otherwise a dev keyring is created at `<run_dir>/secrets/master-keys.json` (mode 0600)
      with a warning: fine for one machine, production must supply its own key file / secret.
  Tenant data keys are *derived*, not stored: HKDF-SHA256(master[v], info="llmaas/content/v1/"
  + tenant). Chosen over random wrapped DEKs because there is nothing to store, back up or
  lose, and rotating the master key rotates every tenant key at once. (Per-tenant
  crypto-shredding would need stored wrapped DEKs; retention deletes rows instead.)

Blob format (all records carry it, so old records stay readable after a rotation):
    b"LMC1" | key version (uint32 big endian) | 12-byte random nonce | ciphertext + 16-byte tag
  The AAD is the header plus the length-prefixed tenant and record id: a ciphertext moved to
  another tenant, record or key version fails authentication. Random 96-bit nonces are safe
  for ~2^32 records per tenant and key version; rotate well before that.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import sqlite3
import struct
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mesh.config import ConfigError, run_dir

log = logging.getLogger(__name__)

MAGIC = b"LMC1"
_HEADER = struct.Struct(">4sI")
NONCE_LEN = 12
KEY_LEN = 32
_INFO_PREFIX = b"llmaas/content/v1/"


class DecryptionError(ValueError):
    """Tampered blob, wrong tenant/record, or unknown key version."""


def _b64key(raw: str, where: str) -> bytes:
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: not valid base64") from exc
    if len(key) != KEY_LEN:
        raise ConfigError(f"{where}: master keys must be {KEY_LEN} bytes, got {len(key)}")
    return key


def _write_private(path: Path, data: bytes) -> None:
    """Atomic replace of a 0600 file: a crash never leaves a half-written keyring."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class Keyring:
    keys: dict[int, bytes]
    active: int
    path: Path | None = None  # where rotations are saved; None = read-only (env)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            doc = json.loads(path.read_text())
            keys = {int(v): _b64key(k, f"{path} key {v}") for v, k in doc["keys"].items()}
            active = int(doc.get("active", max(keys)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"master key file {path}: {exc}") from exc
        if active not in keys:
            raise ConfigError(f"master key file {path}: active version {active} has no key")
        if path.stat().st_mode & 0o077:
            log.warning("master key file %s is readable by group/others; chmod 600 it", path)
        return cls(keys, active, path)

    @classmethod
    def from_env_value(cls, value: str) -> Keyring:
        if ":" not in value:
            return cls({1: _b64key(value, "LLMAAS_MASTER_KEY")}, 1)
        keys: dict[int, bytes] = {}
        for item in value.split(","):
            version, _, raw = item.partition(":")
            keys[int(version)] = _b64key(raw, f"LLMAAS_MASTER_KEY version {version}")
        return cls(keys, max(keys))

    @classmethod
    def create(cls, path: Path) -> Keyring:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        ring = cls({1: secrets.token_bytes(KEY_LEN)}, 1, path)
        ring.save()
        return ring

    def save(self) -> None:
        if self.path is None:
            raise ConfigError(
                "master keys come from LLMAAS_MASTER_KEY: rotate by updating the secret"
            )
        doc = {
            "active": self.active,
            "keys": {str(v): base64.b64encode(k).decode() for v, k in sorted(self.keys.items())},
        }
        _write_private(self.path, json.dumps(doc, indent=2).encode())

    def add_version(self) -> int:
        version = max(self.keys) + 1
        self.keys[version] = secrets.token_bytes(KEY_LEN)
        self.active = version
        self.save()
        return version


def _aad(header: bytes, tenant: str, record_id: str) -> bytes:
    # Length prefixes keep ("ab", "c") and ("a", "bc") distinct.
    parts = [tenant.encode(), record_id.encode()]
    return header + b"".join(struct.pack(">I", len(p)) + p for p in parts)


class Sealer:
    """seal/open tenant content with the keyring; thread-safe (keys only grow)."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring
        self._tenant_keys: dict[tuple[int, str], AESGCM] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_env(
        cls, base_dir: Path | None = None, environ: Mapping[str, str] | None = None
    ) -> Sealer:
        environ = os.environ if environ is None else environ
        if file := environ.get("LLMAAS_MASTER_KEY_FILE"):
            return cls(Keyring.load(Path(file)))
        if value := environ.get("LLMAAS_MASTER_KEY"):
            return cls(Keyring.from_env_value(value))
        path = (base_dir or run_dir(dict(environ))) / "secrets" / "master-keys.json"
        if path.exists():
            return cls(Keyring.load(path))
        log.warning(
            "no master key configured: created dev keyring %s (set LLMAAS_MASTER_KEY_FILE)", path
        )
        return cls(Keyring.create(path))

    @property
    def active_version(self) -> int:
        return self.keyring.active

    def _aead(self, version: int, tenant: str) -> AESGCM:
        with self._lock:
            cached = self._tenant_keys.get((version, tenant))
            if cached is None:
                master = self.keyring.keys.get(version)
                if master is None:
                    raise DecryptionError(f"unknown master key version {version}")
                hkdf = HKDF(
                    hashes.SHA256(), KEY_LEN, salt=None, info=_INFO_PREFIX + tenant.encode()
                )
                cached = self._tenant_keys[(version, tenant)] = AESGCM(hkdf.derive(master))
            return cached

    def seal(self, tenant: str, record_id: str, plaintext: bytes) -> bytes:
        version = self.keyring.active
        header = _HEADER.pack(MAGIC, version)
        nonce = secrets.token_bytes(NONCE_LEN)
        body = self._aead(version, tenant).encrypt(
            nonce, plaintext, _aad(header, tenant, record_id)
        )
        return header + nonce + body

    def open(self, tenant: str, record_id: str, blob: bytes) -> bytes:
        if len(blob) < _HEADER.size + NONCE_LEN + 16:
            raise DecryptionError("blob too short")
        header, nonce = blob[: _HEADER.size], blob[_HEADER.size : _HEADER.size + NONCE_LEN]
        magic, version = _HEADER.unpack(header)
        if magic != MAGIC:
            raise DecryptionError("not a sealed llmaas blob")
        try:
            return self._aead(version, tenant).decrypt(
                nonce, blob[_HEADER.size + NONCE_LEN :], _aad(header, tenant, record_id)
            )
        except InvalidTag as exc:
            raise DecryptionError(
                "authentication failed (tampered, or wrong tenant/record)"
            ) from exc

    def rotate(self) -> int:
        """Adds a new master key version for new writes; old versions stay for reading."""
        with self._lock:
            return self.keyring.add_version()

    @staticmethod
    def version_of(blob: bytes) -> int:
        return _HEADER.unpack(blob[: _HEADER.size])[1]


class ContentLog:
    """Prompts and answers of tenants that enabled content logging, sealed per field.

    Tenant, request id and time stay in clear (retention and lookups need them); the record
    id in the AAD is `<request_id>/prompt` or `/answer`, so fields cannot be swapped.
    """

    _SCHEMA = """CREATE TABLE IF NOT EXISTS content_log (
        tenant TEXT NOT NULL, request_id TEXT NOT NULL, created_at REAL NOT NULL,
        prompt BLOB NOT NULL, answer BLOB NOT NULL, PRIMARY KEY (tenant, request_id))"""

    def __init__(self, path: Path, sealer: Sealer) -> None:
        self.sealer = sealer
        self._lock = threading.Lock()  # one connection shared by the router's threads
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Purged rows are overwritten, not left in free pages (retention means gone).
        self._db.execute("PRAGMA secure_delete=ON")
        self._db.execute(self._SCHEMA)

    def append(self, tenant: str, request_id: str, prompt: str, answer: str) -> None:
        sealed_prompt = self.sealer.seal(tenant, f"{request_id}/prompt", prompt.encode())
        sealed_answer = self.sealer.seal(tenant, f"{request_id}/answer", answer.encode())
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO content_log VALUES (?, ?, ?, ?, ?)",
                (tenant, request_id, time.time(), sealed_prompt, sealed_answer),
            )

    def read(self, tenant: str, request_id: str) -> tuple[str, str] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT prompt, answer FROM content_log WHERE tenant = ? AND request_id = ?",
                (tenant, request_id),
            ).fetchone()
        if row is None:
            return None
        prompt = self.sealer.open(tenant, f"{request_id}/prompt", row[0])
        answer = self.sealer.open(tenant, f"{request_id}/answer", row[1])
        return prompt.decode(), answer.decode()

    def purge_older_than(self, seconds: float, tenant: str | None = None) -> int:
        """Retention: deletes records older than `seconds` (one tenant or all); returns how many."""
        cutoff = time.time() - seconds
        sql, args = "DELETE FROM content_log WHERE created_at < ?", [cutoff]
        if tenant is not None:
            sql, args = sql + " AND tenant = ?", [cutoff, tenant]
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()
