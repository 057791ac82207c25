"""Retention: a router background task that purges what a tenant's policy says expired.

Every `LLMAAS_RETENTION_INTERVAL_S` (default 3600 s) and once at start:
  - content (encrypted prompts/answers) of a tenant older than its `retention_days` is
    deleted;
  - its per-request usage rows older than that roll up into daily totals (bills stay exact);
  - audit records at the start of the hash chain that have all expired are cut off at a
    checkpoint, so `llmaas-admin audit verify` still verifies the rest of the chain.
Records of no tenant (refused anonymous calls) and of unknown tenants follow the platform's
`LLMAAS_AUDIT_RETENTION_DAYS` (default 365; 0 = forever). `retention_days` 0 = forever.
Every run that removes something appends one `retention.purge` audit record (chained, in the
same transaction as the audit/usage deletion) naming the checkpoint and the counts.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from mesh.aio import cancel_and_wait
from mesh.config import env
from mesh.router.accounts import Accounts
from mesh.router.content import ContentRecorder
from mesh.router.store import PurgeResult

log = logging.getLogger(__name__)

DAY_S = 86400.0


class Retention:
    def __init__(
        self,
        accounts: Accounts,
        content: ContentRecorder | None = None,
        *,
        interval_s: float = 3600.0,
        audit_retention_days: float = 365.0,
    ) -> None:
        self.accounts = accounts
        self.content = content
        self.interval_s = interval_s
        self.audit_retention_days = audit_retention_days
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_env(
        cls,
        accounts: Accounts,
        content: ContentRecorder | None,
        environ: Mapping[str, str] | None = None,
    ) -> Retention:
        environ = dict(os.environ if environ is None else environ)
        return cls(
            accounts,
            content,
            interval_s=env("LLMAAS_RETENTION_INTERVAL_S", float, 3600.0, environ),
            audit_retention_days=env("LLMAAS_AUDIT_RETENTION_DAYS", float, 365.0, environ),
        )

    async def run_once(self) -> PurgeResult | None:
        now = self.accounts.now()
        cutoffs: dict[str, float | None] = {
            t.name: (now - t.retention_days * DAY_S if t.retention_days > 0 else None)
            for t in self.accounts.directory.tenants()
        }
        content_purged = 0
        if self.content is not None:
            for tenant, cutoff in cutoffs.items():
                if cutoff is not None:
                    content_purged += await self.content.purge(tenant, now - cutoff)
        default = now - self.audit_retention_days * DAY_S if self.audit_retention_days else None
        result = await self.accounts.store.purge_expired(cutoffs, default, now, content_purged)
        if result is not None:
            log.info(
                "retention purge: %d audit records (checkpoint seq %d), %d usage rows, "
                "%d content records",
                result.audit_records,
                result.checkpoint[0],
                result.usage_rows,
                result.content_records,
            )
        return result

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="retention")

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - retention must keep running
                log.exception("retention purge failed")
            await asyncio.sleep(self.interval_s)
