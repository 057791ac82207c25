"""Content logging at rest: prompts and answers are stored sealed (AES-256-GCM, per-tenant
keys); no clear text reaches any database file, WAL included; rotation keeps old records
readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from secure_kit import ANSWER, start_router

from mesh.crypto import Keyring, Sealer
from mesh.router.content import ContentRecorder

PROMPT = "My passport number is ZX-PINEAPPLE-90210, keep it safe."
SECRETS = (b"PINEAPPLE-90210", b"OCTARINE-4417", "PINEAPPLE-90210".encode("utf-16-le"))


def _files(tmp_path: Path) -> dict[str, bytes]:
    found = {p.name: p.read_bytes() for p in tmp_path.iterdir() if ".sqlite3" in p.name}
    assert {"accounts.sqlite3", "content.sqlite3"} <= set(found)
    return found


@pytest.fixture
async def router(tmp_path):
    r = await start_router(tmp_path)
    yield r
    await r.close()


async def test_logged_content_is_never_in_clear_on_disk(router, tmp_path) -> None:
    logged = await router.add_tenant("acme", content_logging=True)
    quiet = await router.add_tenant("quiet")
    assert await router.chat(logged, PROMPT, "req-logged") == "".join(ANSWER)
    assert await router.chat(quiet, PROMPT, "req-quiet") == "".join(ANSWER)

    # The tenant that opted in can have its content back; the other one has none stored.
    assert await router.content.read("acme", "req-logged") == (PROMPT, "".join(ANSWER))
    assert await router.content.read("quiet", "req-quiet") is None
    assert await router.content.read("quiet", "req-logged") is None  # tenant-scoped

    files = _files(tmp_path)  # accounts + content databases, their -wal/-journal files
    assert any(name.endswith("-wal") for name in files)
    for name, data in files.items():
        for secret in SECRETS:
            assert secret not in data, f"{secret!r} in clear in {name}"
    # What is stored is the sealed format (magic + key version), one blob per field.
    assert files["content.sqlite3"].count(b"LMC1") >= 2


async def test_records_written_before_a_rotation_stay_readable(tmp_path) -> None:
    keys = tmp_path / "keys.json"
    content = ContentRecorder(tmp_path / "content.sqlite3", lambda: Sealer(Keyring.create(keys)))
    await content.record("acme", "r1", "before rotation", "old answer")
    sealer = content._open().sealer
    assert sealer.rotate() == 2
    await content.record("acme", "r2", "after rotation", "new answer")
    content.close()

    # A fresh process: the keyring (both versions) is read back from its 0600 file.
    reopened = ContentRecorder(tmp_path / "content.sqlite3", lambda: Sealer(Keyring.load(keys)))
    assert await reopened.read("acme", "r1") == ("before rotation", "old answer")
    assert await reopened.read("acme", "r2") == ("after rotation", "new answer")
    log = reopened._open()
    versions = {
        rid: Sealer.version_of(blob)
        for rid, blob in log._db.execute("SELECT request_id, prompt FROM content_log")
    }
    assert versions == {"r1": 1, "r2": 2}
    assert keys.stat().st_mode & 0o077 == 0
    reopened.close()
