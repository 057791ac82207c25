"""`Accounts`: the full AccessControl (keys, tiers, limits, usage, audit, rotation).

A facade over small parts, each with one job: `Directory` (tenants and keys in memory,
written through), `KeyLifecycle` (authentication and rotation), `Recorder` (durable,
fail-closed audit and usage records), `Limiter`/`Budget` (admission) and `bootstrap`
(the keys the environment asks for). The request path touches memory only; `record()` is
the one call that writes, and it returns once the record is durable. Start with
`await start()` (also done lazily by the first call) and stop with `await close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mesh.aio import cancel_and_wait
from mesh.config import ConfigError, env, run_dir
from mesh.router.access import Admission, Principal, RequestRecord
from mesh.router.bootstrap import ADMIN_TENANT, DEV_TENANT, Bootstrap, apply_bootstrap
from mesh.router.directory import Directory
from mesh.router.key_lifecycle import KeyLifecycle
from mesh.router.keys import KeyHasher, KeyRecord, load_audit_key, load_pepper
from mesh.router.ratelimit import Budget, Limiter
from mesh.router.recording import (
    AGGREGATE_ACTION,
    AUDIT_UNAVAILABLE,
    AUDIT_WRITE_FAILING,
    AUDIT_WRITE_FAILURES,
    RECOVERED_ACTION,
    Recorder,
    usage_of,
)
from mesh.router.refusals import UNAUTH_RECORDS_PER_MINUTE, RefusalSampler
from mesh.router.shared import SharedState
from mesh.router.shared.budget import RedisBudget
from mesh.router.shared.limits import RedisLimiter
from mesh.router.store import Store
from mesh.router.store_backends import build_store
from mesh.router.tenants import DEFAULT_TIERS, Tier, load_tiers

log = logging.getLogger(__name__)

# The names this module has always offered (the router, tests and tools import them here).
__all__ = [
    "ADMIN_TENANT",
    "AGGREGATE_ACTION",
    "AUDIT_UNAVAILABLE",
    "AUDIT_WRITE_FAILING",
    "AUDIT_WRITE_FAILURES",
    "DEV_TENANT",
    "RECOVERED_ACTION",
    "UNAUTH_RECORDS_PER_MINUTE",
    "Accounts",
    "Bootstrap",
    "RefusalSampler",
    "build_access",
]


class _Forward:
    """An attribute of one of the facade's parts, read through the facade."""

    def __init__(self, part: str, name: str) -> None:
        self._part, self._name = part, name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        return self if obj is None else getattr(getattr(obj, self._part), self._name)


class Accounts:
    _probe_task = _Forward("_recorder", "probe_task")  # the running probe write, if any
    _usage_of = staticmethod(usage_of)  # kept for tests that ask what a record bills

    def __init__(
        self,
        store: Store,
        hasher: KeyHasher,
        tiers: Mapping[str, Tier] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rotation_check_s: float = 5.0,
        bootstrap: Bootstrap = Bootstrap(),
        probe_interval_s: float = 2.0,
        unauth_per_minute: int = UNAUTH_RECORDS_PER_MINUTE,
        shared: SharedState | None = None,
    ) -> None:
        self.store = store
        self.tiers = dict(tiers or DEFAULT_TIERS)
        self.directory = Directory(store, hasher, clock)
        # Limits and budget: in process, or in Redis shared by every router (LLMAAS_REDIS_URL).
        self.shared = shared
        self.limiter: Limiter | RedisLimiter = shared.limiter if shared else Limiter(clock)
        self.budget: Budget | RedisBudget = shared.budget if shared else Budget(clock)
        self.refusals = RefusalSampler(unauth_per_minute)
        self._recorder = Recorder(store, self.budget, self.refusals, clock, probe_interval_s)
        self._keys = KeyLifecycle(self.directory, store, self._recorder, clock)
        self._clock = clock
        self._rotation_check_s = rotation_check_s
        self._bootstrap = bootstrap
        self._started = False
        self._start_lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    # -- lifecycle --

    async def start(self) -> None:
        async with self._start_lock:
            if self._started:
                return
            await self.store.open()
            await self.directory.load()
            month_start = (
                datetime.strptime(self.budget.month, "%Y-%m").replace(tzinfo=UTC).timestamp()
            )
            self.budget.seed(self.budget.month, await self.store.month_spend(month_start))
            if self.shared is not None:  # key/tenant changes of every router reach this one
                await self.shared.watch(self.directory)
            await apply_bootstrap(self._bootstrap, self.directory, self._clock)
            self._task = asyncio.create_task(
                _maintain(self._rotation_check_s, self._keys, self._recorder),
                name="accounts-maintenance",
            )
            self._started = True

    async def close(self) -> None:
        for task in (self._task, self._recorder.probe_task):
            await cancel_and_wait(task)
        self._task = self._recorder.probe_task = None
        if self._started:
            with contextlib.suppress(Exception):  # logged by the recorder; closing goes on
                await self._recorder.flush_refusals(all_minutes=True)
            await self._keys.flush_last_used()
            await self.store.close()
            self._started = False
        if self.shared is not None:
            await self.shared.close()

    # -- AccessControl --

    async def authenticate(self, api_key: str) -> Principal:
        if not self._started:
            await self.start()
        return await self._keys.authenticate(api_key)

    async def admit(self, principal: Principal, model: str, estimated_tokens: int) -> Admission:
        tier = self.tier(principal.tier)
        self.budget.check(principal.tenant, tier)
        return await self.limiter.admit(principal.tenant, tier, max(0, estimated_tokens))

    def ensure_recording(self) -> None:
        """Raises 503 `audit_unavailable` while audit/usage writes fail (fail closed).

        A probe write runs in the background at most every `probe_interval_s`, so the
        service comes back by itself when the cause (full disk, lock, ...) is gone.
        """
        self._recorder.ensure_recording()

    def recording_problem(self) -> str:
        """'' while durable recording works, else what fails (for health lines)."""
        return self._recorder.recording_problem()

    async def probe_recording(self) -> bool:
        """One cheap audit write; on success recording is healthy again (and says so)."""
        return await self._recorder.probe_recording()

    async def release(
        self, principal: Principal, admission: Admission, record: RequestRecord
    ) -> None:
        actual = record.input_tokens + record.output_tokens + record.reasoning_tokens
        await self.limiter.settle(admission, actual)

    async def record(self, record: RequestRecord) -> None:
        """Appends the audit record (and usage when billed); durable when this returns.

        Shielded: a request cancelled while its record is being written still gets it.
        """
        if not self._started:
            await self.start()
        await self._recorder.record(record)

    # -- for the router and the admin service --

    def now(self) -> float:
        return self._clock()

    def tier(self, name: str) -> Tier:
        """The tier's limits (and fair-queue `weight`); unknown names fall back to standard."""
        return self.tiers.get(name) or self.tiers.get("standard") or DEFAULT_TIERS["standard"]

    async def audit_event(
        self,
        actor: Principal | None,
        action: str,
        *,
        tenant: str,
        key_id: str = "",
        reason: str = "",
        outcome: str = "ok",
        status: int = 200,
    ) -> None:
        """Audits an administrative action (who did it goes into `reason`)."""
        await self._recorder.audit_event(
            actor,
            action,
            tenant=tenant,
            key_id=key_id,
            reason=reason,
            outcome=outcome,
            status=status,
        )

    async def rotate_key(
        self, key_id: str, overlap_s: int, actor: Principal | None
    ) -> tuple[KeyRecord, KeyRecord, str]:
        """Manual rotation; `overlap_s` 0 = the tenant's policy (or one hour without one)."""
        return await self._keys.rotate_key(key_id, overlap_s, actor)

    async def rotate_due_keys(self) -> int:
        return await self._keys.rotate_due_keys()


async def _maintain(interval_s: float, keys: KeyLifecycle, recorder: Recorder) -> None:
    """Every `interval_s`: automatic rotation, last-used timestamps, refusal aggregates."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await keys.rotate_due_keys()
            await keys.flush_last_used()
            await recorder.flush_refusals()
        except Exception:  # noqa: BLE001 - keep the periodic task alive
            log.exception("accounts maintenance failed")


def build_access(
    config: Mapping[str, Any],
    environ: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
) -> Accounts:
    """Accounts from the parsed TOML config (`[tiers.*]`, `[accounts]`) and LLMAAS_* env.

    [accounts] db_path (default <run dir>/accounts.sqlite3, env LLMAAS_ACCOUNTS_DB),
    rotation_check_s (default 5, env LLMAAS_ROTATION_CHECK_S).
    """
    environ = dict(os.environ if environ is None else environ)
    section = config.get("accounts") or {}
    runs = run_dir(environ)
    db_path = env(
        "LLMAAS_ACCOUNTS_DB", str, str(section.get("db_path") or runs / "accounts.sqlite3"), environ
    )
    check_s = env(
        "LLMAAS_ROTATION_CHECK_S", float, float(section.get("rotation_check_s", 5.0)), environ
    )
    tiers = load_tiers(config)
    bootstrap = Bootstrap(
        admin_key=environ.get("LLMAAS_ADMIN_KEY", ""),
        dev_key=environ.get("LLMAAS_DEV_KEY", ""),
        dev_tier=environ.get("LLMAAS_DEV_TIER") or "enterprise",
    )
    if bootstrap.dev_tier not in tiers:
        raise ConfigError(
            f"LLMAAS_DEV_TIER={bootstrap.dev_tier!r} is not a tier ({', '.join(tiers)})"
        )
    hasher = KeyHasher(load_pepper(environ, runs))
    # LLMAAS_DATABASE_URL=postgresql://...: PostgreSQL; unset: the SQLite file (db_path).
    store = build_store(environ, Path(db_path), load_audit_key(environ, runs))
    return Accounts(
        store,
        hasher,
        tiers,
        clock=clock,
        rotation_check_s=check_s,
        bootstrap=bootstrap,
        shared=SharedState.from_env(environ),
    )
