"""Content logging at rest: prompts and answers of tenants that turned it on.

`ContentRecorder` wraps `mesh.crypto.ContentLog` (AES-256-GCM, per-tenant keys derived from
versioned master keys, old versions kept for reading) for the router: opened on first use
(so a mesh where no tenant logs content never creates keys or files), and every database
call runs off the event loop. The file is `LLMAAS_CONTENT_DB` (default
`<run dir>/content.sqlite3`), or with LLMAAS_DATABASE_URL the `content_log` table of the
PostgreSQL accounts database (mesh.router.pg.content); master keys come from
`LLMAAS_MASTER_KEY_FILE` / `LLMAAS_MASTER_KEY` (see mesh.crypto). Only ciphertext ever
reaches the file or the database.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mesh.config import env, run_dir
from mesh.crypto import ContentLog, Sealer
from mesh.router.store_backends import database_url

if TYPE_CHECKING:
    from mesh.router.pg.content import PgContentLog


class ContentRecorder:
    def __init__(
        self, path: str | Path, sealer: Callable[[], Sealer], database_url: str = ""
    ) -> None:
        self.path = Path(path)
        self._make_sealer = sealer
        self.database_url = database_url  # set: PostgreSQL, `path` unused
        self._log: ContentLog | PgContentLog | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ContentRecorder:
        environ = dict(os.environ if environ is None else environ)
        runs = run_dir(environ)
        path = env("LLMAAS_CONTENT_DB", str, str(runs / "content.sqlite3"), environ)
        return cls(path, lambda: Sealer.from_env(runs, environ), database_url(environ))

    def _open(self) -> ContentLog | PgContentLog:
        with self._lock:
            if self._log is None and self.database_url:
                from mesh.router.pg.content import PgContentLog  # noqa: PLC0415 - when used

                self._log = PgContentLog(self.database_url, self._make_sealer)
            if self._log is None:
                if not self.path.parent.exists():
                    self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                # Ciphertext only, but tenant ids and request ids are in clear: 0600.
                os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
                os.chmod(self.path, 0o600)
                self._log = ContentLog(self.path, self._make_sealer())
            return self._log

    async def record(self, tenant: str, request_id: str, prompt: str, answer: str) -> None:
        await asyncio.to_thread(lambda: self._open().append(tenant, request_id, prompt, answer))

    async def read(self, tenant: str, request_id: str) -> tuple[str, str] | None:
        """Decrypted (prompt, answer) of one of `tenant`'s requests; never another tenant's."""
        return await asyncio.to_thread(lambda: self._open().read(tenant, request_id))

    async def purge(self, tenant: str, older_than_s: float) -> int:
        """Retention: deletes the tenant's records older than `older_than_s`; returns how many."""
        if self._log is None and not self.database_url and not self.path.exists():
            return 0
        return await asyncio.to_thread(lambda: self._open().purge_older_than(older_than_s, tenant))

    def close(self) -> None:
        with self._lock:
            if self._log is not None:
                self._log.close()
                self._log = None
