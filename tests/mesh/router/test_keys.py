from __future__ import annotations

import os
import stat

import pytest
from cryptography.exceptions import InvalidTag

from mesh.router.keys import (
    KeyHasher,
    KeyRecord,
    format_key,
    load_pepper,
    make_successor,
    new_key_id,
    public_id,
    rotation_due,
    rotation_due_at,
)
from mesh.router.tenants import effective_patterns, valid_tenant_name


def test_key_format_carries_its_public_id() -> None:
    key_id = new_key_id()
    secret = format_key(key_id)
    assert secret.startswith("sk-llmaas-")
    assert public_id(secret) == key_id
    assert public_id("sk-nope") == ""
    assert public_id(secret[:-30]) == ""  # secret part too short


def test_hmac_depends_on_pepper_and_secret() -> None:
    a, b = KeyHasher(b"p" * 16), KeyHasher(b"q" * 16)
    assert a.digest("k") == a.digest("k")
    assert a.digest("k") != b.digest("k")
    assert a.digest("k") != a.digest("k2")
    with pytest.raises(ValueError):
        KeyHasher(b"short")


def test_sealed_secret_opens_only_for_its_key_id() -> None:
    hasher = KeyHasher(b"p" * 16)
    sealed = hasher.seal("sk-secret", "key_a")
    assert b"sk-secret" not in sealed
    assert hasher.open(sealed, "key_a") == "sk-secret"
    with pytest.raises(InvalidTag):
        hasher.open(sealed, "key_b")


def test_pepper_from_env_or_a_0600_file(tmp_path) -> None:
    assert (
        load_pepper({"LLMAAS_KEY_PEPPER": "from-env-0123456789"}, tmp_path)
        == b"from-env-0123456789"
    )
    first = load_pepper({}, tmp_path)
    path = tmp_path / "secrets" / "pepper"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(first) == 64 and load_pepper({}, tmp_path) == first


def test_rotation_is_due_overlap_before_the_end() -> None:
    key = KeyRecord(id="key_a", tenant="t", key_hash=b"h", created_at=1000.0)
    assert rotation_due_at(key, 0, 0) == 0.0  # no policy
    assert rotation_due_at(key, 100, 20) == 1080.0
    assert not rotation_due(key, 100, 20, 1079.9)
    assert rotation_due(key, 100, 20, 1080.0)
    short = KeyRecord(id="key_b", tenant="t", key_hash=b"h", created_at=1000.0, expires_at=1050.0)
    assert rotation_due_at(short, 100, 20) == 1030.0  # an explicit expiry comes first
    assert not rotation_due(
        KeyRecord(id="c", tenant="t", key_hash=b"h", successor_id="x"), 100, 20, 5000
    )
    assert not rotation_due(
        KeyRecord(id="d", tenant="t", key_hash=b"h", revoked_at=1.0), 100, 20, 5000
    )


def test_successor_inherits_rights_and_old_key_retires_after_overlap() -> None:
    old = KeyRecord(
        id="key_a",
        tenant="t",
        key_hash=b"h",
        model_patterns=("qwen3:*",),
        admin=True,
        created_at=1000.0,
        expires_at=2000.0,
    )
    retiring, new = make_successor(old, "key_b", b"h2", 20, 1500.0)
    assert (retiring.successor_id, retiring.expires_at) == ("key_b", 1520.0)
    assert (new.predecessor_id, new.tenant, new.model_patterns, new.admin) == (
        "key_a",
        "t",
        ("qwen3:*",),
        True,
    )
    assert new.expires_at == 2500.0  # same lifetime as the old key
    assert not retiring.is_usable(1520.0) and retiring.is_usable(1519.0)


def test_key_patterns_narrow_never_widen_the_tenant() -> None:
    assert effective_patterns(("*",), None) == ("*",)
    assert effective_patterns(("*",), ("qwen3:*", "smollm2:135m")) == ("qwen3:*", "smollm2:135m")
    assert effective_patterns(("qwen3:*",), ("*",)) == ("qwen3:*",)
    assert effective_patterns(("qwen3:*",), ("qwen3:8b", "llama3:8b")) == ("qwen3:8b",)
    assert effective_patterns(("qwen3:*",), ("llama3:*",)) == ()


def test_tenant_names() -> None:
    assert valid_tenant_name("acme-corp_1")
    assert (
        not valid_tenant_name("") and not valid_tenant_name("Acme") and not valid_tenant_name("-x")
    )


def test_racing_processes_read_one_whole_secret(tmp_path):
    """Two routers starting on one run directory: neither reads the secret file before it
    is written (it is linked into place whole), and both get the same secret."""
    import multiprocessing

    from mesh.router.keys import load_pepper

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        peppers = pool.starmap(load_pepper, [({}, tmp_path)] * 16)
    assert len(set(peppers)) == 1 and len(peppers[0]) == 64
    assert sorted(p.name for p in (tmp_path / "secrets").iterdir()) == ["pepper"]
