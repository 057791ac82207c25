"""`Accounts`: the full AccessControl (keys, tiers, limits, usage, audit, rotation).

The request path touches memory only (key lookup, limiter); `record()` is the one call
that writes, and it returns once the record is durable. Start with `await start()` (also
done lazily by the first call) and stop with `await close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mesh.config import ConfigError, env, run_dir
from mesh.errors import Unauthenticated
from mesh.router.access import Admission, Principal, RequestRecord
from mesh.router.audit import AuditEntry, iso_time, redact
from mesh.router.directory import Directory
from mesh.router.keys import DEFAULT_MANUAL_OVERLAP_S, KeyHasher, KeyRecord, load_pepper
from mesh.router.ratelimit import Budget, Limiter, Ticket
from mesh.router.store import SqliteStore, Store, UsageEntry
from mesh.router.tenants import DEFAULT_TIERS, Tenant, Tier, load_tiers

log = logging.getLogger(__name__)

ADMIN_TENANT = "admin"
DEV_TENANT = "dev"
_BILLED_OUTCOMES = ("ok", "cancelled")


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Keys that must exist with exactly these values after start (from the environment)."""

    admin_key: str = ""
    dev_key: str = ""
    dev_tier: str = "enterprise"


def _invalid_key() -> Unauthenticated:
    return Unauthenticated(
        "Incorrect API key provided. Pass a valid key as 'Authorization: Bearer <key>'.",
        code="invalid_api_key",
    )


class Accounts:
    def __init__(
        self,
        store: Store,
        hasher: KeyHasher,
        tiers: Mapping[str, Tier] | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rotation_check_s: float = 5.0,
        bootstrap: Bootstrap = Bootstrap(),
    ) -> None:
        self.store = store
        self.tiers = dict(tiers or DEFAULT_TIERS)
        self.directory = Directory(store, hasher, clock)
        self.limiter = Limiter(clock)
        self.budget = Budget(clock)
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
            await self._apply_bootstrap()
            self._task = asyncio.create_task(self._maintain(), name="accounts-maintenance")
            self._started = True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._started:
            await self._flush_last_used()
            await self.store.close()
            self._started = False

    async def _apply_bootstrap(self) -> None:
        b = self._bootstrap
        if b.admin_key:
            await self._ensure_tenant(ADMIN_TENANT, "enterprise")
            await self.directory.ensure_key(ADMIN_TENANT, b.admin_key, admin=True)
        if b.dev_key:
            await self._ensure_tenant(DEV_TENANT, b.dev_tier)
            await self.directory.ensure_key(DEV_TENANT, b.dev_key, admin=False)

    async def _ensure_tenant(self, name: str, tier: str) -> None:
        tenant = self.directory.find_tenant(name) or Tenant(name=name, created_at=self._clock())
        await self.directory.save_tenant(replace(tenant, tier=tier, model_patterns=("*",)))

    # -- AccessControl --

    async def authenticate(self, api_key: str) -> Principal:
        if not self._started:
            await self.start()
        key = self.directory.find(api_key) if api_key else None
        if key is None:
            raise _invalid_key()
        now = self._clock()
        self._check_usable(key, now)
        if self.directory.rotation_due(key, now):
            await self._rotate_on_use(key.id)
        self.directory.mark_used(key, now)
        return self.directory.principal(key)

    @staticmethod
    def _check_usable(key: KeyRecord, now: float) -> None:
        if key.revoked_at:
            raise Unauthenticated(
                f"The API key {key.id} has been revoked. Use another key.", code="invalid_api_key"
            )
        if key.is_expired(now):
            hint = f" Fetch its successor {key.successor_id}." if key.successor_id else ""
            raise Unauthenticated(
                f"The API key {key.id} has expired.{hint}", code="invalid_api_key"
            )

    async def admit(self, principal: Principal, model: str, estimated_tokens: int) -> Admission:
        tier = self.tier(principal.tier)
        self.budget.check(principal.tenant, tier)
        return self.limiter.acquire(principal.tenant, tier, max(0, estimated_tokens))

    async def release(
        self, principal: Principal, admission: Admission, record: RequestRecord
    ) -> None:
        if isinstance(admission, Ticket):
            actual = record.input_tokens + record.output_tokens + record.reasoning_tokens
            self.limiter.release(admission, actual)

    async def record(self, record: RequestRecord) -> None:
        """Appends the audit record (and usage when billed); durable when this returns.

        Shielded: a request cancelled while its record is being written still gets it.
        """
        if not self._started:
            await self.start()
        now = self._clock()
        p = record.principal
        tenant, key_id = (p.tenant if p else ""), (record.key_id or (p.key_id if p else ""))
        entry = AuditEntry(
            time=iso_time(now),
            request_id=record.request_id,
            tenant=tenant,
            key_id=key_id,
            model=record.model,
            action=record.action,
            outcome=record.outcome,
            status=record.status,
            input_tokens=record.input_tokens,
            output_tokens=record.output_tokens,
            latency_ms=round(record.latency_ms, 3),
            reason=redact(record.reason),
            filter_verdict=record.filter_verdict,
        )
        await asyncio.shield(self._persist(entry, self._usage_of(record, now, tenant, key_id)))

    async def _persist(self, entry: AuditEntry, usage: UsageEntry | None) -> None:
        await self.store.append(entry, usage)
        if usage is not None:
            self.budget.add(usage.tenant, usage.cost_eur, usage.time)

    @staticmethod
    def _usage_of(r: RequestRecord, now: float, tenant: str, key_id: str) -> UsageEntry | None:
        tokens = r.input_tokens + r.output_tokens + r.reasoning_tokens + r.system_tokens
        if not tenant or not (tokens or r.cost_eur or (r.model and r.outcome in _BILLED_OUTCOMES)):
            return None
        return UsageEntry(
            time=now,
            request_id=r.request_id,
            tenant=tenant,
            key_id=key_id,
            model=r.model,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            reasoning_tokens=r.reasoning_tokens,
            system_tokens=r.system_tokens,
            cost_eur=Decimal(r.cost_eur),
            energy_kwh=Decimal(r.energy_kwh),
        )

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
        who = f"by {actor.key_id}" if actor else "by the router"
        entry = AuditEntry(
            time=iso_time(self._clock()),
            request_id="",
            tenant=tenant,
            key_id=key_id,
            model="",
            action=action,
            outcome=outcome,
            status=status,
            reason=redact(f"{reason} ({who})" if reason else who),
        )
        await asyncio.shield(self.store.append(entry, None))

    async def rotate_key(
        self, key_id: str, overlap_s: int, actor: Principal | None
    ) -> tuple[KeyRecord, KeyRecord, str]:
        """Manual rotation; `overlap_s` 0 = the tenant's policy (or one hour without one)."""
        key = self.directory.key(key_id)
        overlap = (
            overlap_s
            or self.directory.tenant(key.tenant).rotation_overlap_s
            or DEFAULT_MANUAL_OVERLAP_S
        )
        result = await self.directory.rotate(key_id, overlap, auto=False)
        assert result is not None  # manual rotations are never skipped
        old, new, secret = result
        await self.audit_event(
            actor,
            "key.rotate",
            tenant=old.tenant,
            key_id=old.id,
            reason=f"manual; successor {new.id}; overlap {overlap}s",
        )
        return old, new, secret

    async def _rotate_on_use(self, key_id: str) -> None:
        # The key is still valid: a failed rotation is retried later, never fails the request.
        try:
            await self._rotate_auto(key_id)
        except Exception:  # noqa: BLE001
            log.exception("automatic rotation of %s failed", key_id)

    async def _rotate_auto(self, key_id: str) -> None:
        key = self.directory.key(key_id)
        overlap = self.directory.tenant(key.tenant).rotation_overlap_s
        result = await self.directory.rotate(key_id, overlap, auto=True)
        if result is not None:
            old, new, _secret = result
            log.info("rotated key %s -> %s (tenant %s)", old.id, new.id, old.tenant)
            await self.audit_event(
                None,
                "key.rotate",
                tenant=old.tenant,
                key_id=old.id,
                reason=f"automatic (max age policy); successor {new.id}; overlap {overlap}s",
            )

    # -- maintenance: automatic rotation, last-used timestamps --

    async def rotate_due_keys(self) -> int:
        due = self.directory.due_rotations(self._clock())
        for key in due:
            await self._rotate_auto(key.id)
        return len(due)

    async def _flush_last_used(self) -> None:
        pending = self.directory.take_last_used()
        if pending:
            await self.store.touch_keys(pending)

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(self._rotation_check_s)
            try:
                await self.rotate_due_keys()
                await self._flush_last_used()
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
    return Accounts(
        SqliteStore(Path(db_path)),
        hasher,
        tiers,
        clock=clock,
        rotation_check_s=check_s,
        bootstrap=bootstrap,
    )
