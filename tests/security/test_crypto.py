"""Envelope encryption at rest: round trip, tampering, AAD binding, rotation, no clear text."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest

from mesh.crypto import ContentLog, DecryptionError, Sealer

SECRET_PROMPT = "my card number is 4970-1234-5678-9012, summarise my contract"


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return Sealer.from_env(tmp_path, environ={})


def test_dev_keyring_created_private_and_reused(tmp_path: Path) -> None:
    first = Sealer.from_env(tmp_path, environ={})
    path = tmp_path / "secrets" / "master-keys.json"
    assert path.stat().st_mode & 0o777 == 0o600
    blob = first.seal("t1", "r1", b"x")
    assert Sealer.from_env(tmp_path, environ={}).open("t1", "r1", blob) == b"x"


def test_round_trip_and_fresh_nonces(sealer: Sealer) -> None:
    a, b = sealer.seal("t1", "r1", b"hello"), sealer.seal("t1", "r1", b"hello")
    assert a != b and b"hello" not in a
    assert sealer.open("t1", "r1", a) == b"hello" == sealer.open("t1", "r1", b)


def test_tampering_is_detected(sealer: Sealer) -> None:
    blob = bytearray(sealer.seal("t1", "r1", b"hello world"))
    for pos in (len(blob) - 1, 20, 10):  # tag, ciphertext, nonce
        bad = bytearray(blob)
        bad[pos] ^= 1
        with pytest.raises(DecryptionError):
            sealer.open("t1", "r1", bytes(bad))
    with pytest.raises(DecryptionError):
        sealer.open("t1", "r1", bytes(blob[:-1]))


def test_aad_binds_tenant_and_record(sealer: Sealer) -> None:
    blob = sealer.seal("tenant-a", "req-1", b"secret")
    for tenant, record in (
        ("tenant-b", "req-1"),
        ("tenant-a", "req-2"),
        ("tenant-a", "req-1/answer"),
    ):
        with pytest.raises(DecryptionError):
            sealer.open(tenant, record, blob)


def test_rotation_keeps_old_records_readable(tmp_path: Path) -> None:
    sealer = Sealer.from_env(tmp_path, environ={})
    old = sealer.seal("t1", "r1", b"before")
    assert sealer.rotate() == 2
    new = sealer.seal("t1", "r2", b"after")
    assert Sealer.version_of(old) == 1 and Sealer.version_of(new) == 2
    reloaded = Sealer.from_env(tmp_path, environ={})  # the rotation was persisted
    assert reloaded.active_version == 2
    assert reloaded.open("t1", "r1", old) == b"before"
    assert reloaded.open("t1", "r2", new) == b"after"


def test_header_version_cannot_be_rewritten(sealer: Sealer) -> None:
    sealer.rotate()
    blob = bytearray(sealer.seal("t1", "r1", b"x"))
    blob[7] = 1  # claim key version 1
    with pytest.raises(DecryptionError):
        sealer.open("t1", "r1", bytes(blob))


def test_env_key_and_key_file(tmp_path: Path) -> None:
    k1, k2 = secrets.token_bytes(32), secrets.token_bytes(32)
    b64 = base64.b64encode
    single = Sealer.from_env(tmp_path, environ={"LLMAAS_MASTER_KEY": b64(k1).decode()})
    blob = single.seal("t", "r", b"v1")
    multi = Sealer.from_env(
        tmp_path, environ={"LLMAAS_MASTER_KEY": f"1:{b64(k1).decode()},2:{b64(k2).decode()}"}
    )
    assert multi.active_version == 2 and multi.open("t", "r", blob) == b"v1"
    key_file = tmp_path / "ring.json"
    key_file.write_text(json.dumps({"active": 1, "keys": {"1": b64(k1).decode()}}))
    key_file.chmod(0o600)
    assert (
        Sealer.from_env(tmp_path, environ={"LLMAAS_MASTER_KEY_FILE": str(key_file)}).open(
            "t", "r", blob
        )
        == b"v1"
    )
    assert not (tmp_path / "secrets").exists()  # no dev keyring when a key is configured


def test_content_log_stores_no_clear_text(tmp_path: Path) -> None:
    sealer = Sealer.from_env(tmp_path, environ={})
    db = tmp_path / "content.sqlite"
    log = ContentLog(db, sealer)
    log.append("acme", "req-1", SECRET_PROMPT, "the contract says 42")
    sealer.rotate()
    log.append("acme", "req-2", "second prompt", "second answer")
    log.close()

    raw = b"".join(p.read_bytes() for p in tmp_path.glob("content.sqlite*"))
    for needle in ("4970-1234", "summarise", "contract says", "second prompt"):
        assert needle.encode() not in raw

    reopened = ContentLog(db, Sealer.from_env(tmp_path, environ={}))
    assert reopened.read("acme", "req-1") == (SECRET_PROMPT, "the contract says 42")
    assert reopened.read("acme", "req-2") == ("second prompt", "second answer")
    assert reopened.read("other", "req-1") is None
    assert reopened.purge_older_than(3600) == 0
    assert reopened.purge_older_than(-1, tenant="other") == 0
    assert reopened.purge_older_than(-1, tenant="acme") == 2
    reopened.close()
