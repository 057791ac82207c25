"""`Accounts`: the full AccessControl (keys, tiers, limits, usage, audit, rotation).

The request path touches memory only (key lookup, limiter); `record()` is the one call
that writes, and it returns once the record is durable. Start with `await start()` (also
done lazily by the first call) and stop with `await close()`.

Fail closed: while the last audit/usage write failed and none succeeded since,
`ensure_recording()` raises 503 `audit_unavailable` (the router calls it before admitting
a request), logs ERROR and sets `llmaas_audit_write_failing`; a cheap probe write, at most
every `probe_interval_s`, brings the service back by itself once the cause is gone.

Audit size is bounded whatever clients send: client-chosen strings are clipped
(`audit.MAX_FIELD_CHARS`), and refusals of callers without a valid key are stored one by
one up to UNAUTH_RECORDS_PER_MINUTE per (action, status, reason) and minute; beyond that
they are counted and stored as one `refusals.aggregate` record per minute and reason.
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

from prometheus_client import Counter, Gauge

from mesh.config import ConfigError, env, run_dir
from mesh.errors import Unauthenticated, Unavailable
from mesh.router.access import Admission, Principal, RequestRecord
from mesh.router.audit import AuditEntry, clip, clipped, iso_time, redact
from mesh.router.directory import Directory
from mesh.router.keys import (
    DEFAULT_MANUAL_OVERLAP_S,
    KeyHasher,
    KeyRecord,
    load_audit_key,
    load_pepper,
)
from mesh.router.ratelimit import Budget, Limiter, Ticket
from mesh.router.store import SqliteStore, Store, UsageEntry
from mesh.router.tenants import DEFAULT_TIERS, Tenant, Tier, load_tiers

log = logging.getLogger(__name__)

ADMIN_TENANT = "admin"
DEV_TENANT = "dev"
_BILLED_OUTCOMES = ("ok", "cancelled")
AUDIT_UNAVAILABLE = "audit_unavailable"
UNAUTH_RECORDS_PER_MINUTE = 60
AGGREGATE_ACTION = "refusals.aggregate"
RECOVERED_ACTION = "audit.recovered"

# Operator signal (router): 1 while audit/usage writes fail and requests are refused 503.
# (Defined here, not in mesh.metrics, to keep this change inside the accounts module.)
AUDIT_WRITE_FAILING = Gauge(
    "llmaas_audit_write_failing",
    "1 while audit and usage writes fail (requests are refused 503 audit_unavailable).",
)
AUDIT_WRITE_FAILURES = Counter(
    "llmaas_audit_write_failures_total", "Audit or usage writes that failed."
)


class RefusalSampler:
    """Bounds how many unauthenticated refusals are stored one by one.

    Per UTC minute and (action, status, reason): the first `per_minute` pass; the rest are
    counted, and `take()` hands the counts of finished minutes out as aggregates. At most
    `max_keys` distinct keys a minute (then one catch-all key), so memory stays bounded.
    """

    def __init__(self, per_minute: int = UNAUTH_RECORDS_PER_MINUTE, max_keys: int = 64) -> None:
        self.per_minute = per_minute
        self._max_keys = max_keys
        self._minute = -1
        self._seen: dict[tuple[str, int, str], int] = {}
        self._pending: list[tuple[int, tuple[str, int, str], int]] = []  # (minute, key, count)

    def admit(self, action: str, status: int, reason: str, now: float) -> bool:
        """True: store this refusal individually; False: it was counted."""
        self._roll(now)
        key = (clip(action, 64), status, clip(reason, 128))
        if key not in self._seen and len(self._seen) >= self._max_keys:
            key = ("*", 0, "other reasons")
        seen = self._seen.get(key, 0) + 1
        self._seen[key] = seen
        return seen <= self.per_minute

    def take(self, now: float, *, all_minutes: bool = False) -> list[tuple[int, tuple, int]]:
        """Aggregates (minute start, key, count over the limit) of finished minutes."""
        self._roll(now)
        if all_minutes:
            self._close_minute()
        out, self._pending = self._pending, []
        return out

    def restore(self, aggregates: list[tuple[int, tuple, int]]) -> None:
        self._pending[:0] = aggregates

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute != self._minute:
            self._close_minute()
            self._minute = minute

    def _close_minute(self) -> None:
        for key, seen in self._seen.items():
            if seen > self.per_minute:
                self._pending.append((self._minute * 60, key, seen - self.per_minute))
        self._seen = {}


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
        probe_interval_s: float = 2.0,
        unauth_per_minute: int = UNAUTH_RECORDS_PER_MINUTE,
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
        # Durable recording health (see ensure_recording).
        self._probe_interval_s = probe_interval_s
        self._recording_error = ""
        self._failing_since = 0.0
        self._failures = 0
        self._refused_while_failing = 0
        self._last_probe = 0.0
        self._probe_task: asyncio.Task | None = None
        self.refusals = RefusalSampler(unauth_per_minute)

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
        for task in (self._task, self._probe_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._probe_task = None
        if self._started:
            with contextlib.suppress(Exception):  # logged by _append; closing goes on
                await self._flush_refusals(all_minutes=True)
            await self._flush_last_used()
            await self.store.close()
            self._started = False

    async def _apply_bootstrap(self) -> None:
        b = self._bootstrap
        if b.admin_key:
            await self._ensure_tenant(ADMIN_TENANT, "enterprise")
            await self._ensure_env_key(ADMIN_TENANT, b.admin_key, "LLMAAS_ADMIN_KEY", admin=True)
        if b.dev_key:
            await self._ensure_tenant(DEV_TENANT, b.dev_tier)
            await self._ensure_env_key(DEV_TENANT, b.dev_key, "LLMAAS_DEV_KEY", admin=False)

    async def _ensure_env_key(self, tenant: str, secret: str, var: str, *, admin: bool) -> None:
        """The env key exists; an admin's revocation, expiry or rotation of it persists (the
        environment only creates it, never brings it back)."""
        existing = self.directory.find(secret)
        if existing is not None and (
            existing.revoked_at or existing.expires_at or existing.successor_id
        ):
            state = "revoked" if existing.revoked_at else "expiring or rotated"
            log.warning(
                "%s is key %s, %s by an admin: left as it is (set another value to get a "
                "fresh key)",
                var,
                existing.id,
                state,
            )
            return
        await self.directory.ensure_key(tenant, secret, admin=admin)

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

    def ensure_recording(self) -> None:
        """Raises 503 `audit_unavailable` while audit/usage writes fail (fail closed).

        A probe write runs in the background at most every `probe_interval_s`, so the
        service comes back by itself when the cause (full disk, lock, ...) is gone.
        """
        if not self._recording_error:
            return
        self._refused_while_failing += 1
        self._maybe_probe()
        raise Unavailable(
            "Requests are refused because the router cannot write its audit and usage "
            f"records ({self._recording_error}). Operators: check the accounts database "
            "(disk space, locks, `llmaas-admin audit verify`); service resumes by itself "
            "once writes succeed.",
            code=AUDIT_UNAVAILABLE,
            retry_after=self._probe_interval_s,
        )

    def recording_problem(self) -> str:
        """'' while durable recording works, else what fails (for health lines)."""
        return self._recording_error

    def _maybe_probe(self) -> None:
        now = self._clock()
        if (self._probe_task is not None and not self._probe_task.done()) or (
            now - self._last_probe < self._probe_interval_s
        ):
            return
        self._last_probe = now
        with contextlib.suppress(RuntimeError):  # no running loop: the next call probes
            self._probe_task = asyncio.get_running_loop().create_task(
                self.probe_recording(), name="audit-probe"
            )

    async def probe_recording(self) -> bool:
        """One cheap audit write; on success recording is healthy again (and says so)."""
        if not self._recording_error:
            return True
        entry = AuditEntry(
            time=iso_time(self._clock()),
            request_id="",
            tenant="",
            key_id="",
            model="",
            action=RECOVERED_ACTION,
            outcome="ok",
            status=200,
            reason=clip(
                f"audit and usage writes work again after {self._failures} failed write(s) "
                f"since {iso_time(self._failing_since)}; {self._refused_while_failing} "
                f"request(s) refused 503 meanwhile; last error: {self._recording_error}",
                1024,
            ),
        )
        try:
            await self._append(entry, None)
        except Exception:  # noqa: BLE001 - still failing; said again once per probe
            log.error("audit/billing writes still failing: %s", self._recording_error)
        return not self._recording_error

    async def _append(self, entry: AuditEntry, usage: UsageEntry | None) -> None:
        """Every audit/usage write goes through here: it tracks whether recording works."""
        try:
            await self.store.append(entry, usage)
        except Exception as exc:
            AUDIT_WRITE_FAILURES.inc()
            if not self._recording_error:
                self._failing_since = self._clock()
                self._refused_while_failing = 0
                self._failures = 0
                self._last_probe = self._clock()
                log.error(
                    "AUDIT/BILLING WRITES FAILING: %s; requests are refused 503 %s until a "
                    "write succeeds",
                    exc,
                    AUDIT_UNAVAILABLE,
                )
            self._failures += 1
            self._recording_error = clip(f"{type(exc).__name__}: {exc}", 200)
            AUDIT_WRITE_FAILING.set(1)
            raise
        if self._recording_error:
            log.warning("audit/billing writes recovered: %s", entry.reason or entry.action)
            self._recording_error = ""
            AUDIT_WRITE_FAILING.set(0)

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
        if self._recording_error and AUDIT_UNAVAILABLE in record.reason:
            return  # refused because recording fails: counted in the recovery record
        if not tenant:
            await asyncio.shield(self._flush_refusals())
            if not self.refusals.admit(record.action, record.status, record.reason, now):
                return  # counted: stored in this minute's aggregate record
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
        usage = self._usage_of(record, now, tenant, key_id)
        await asyncio.shield(self._persist(clipped(entry), usage))

    async def _persist(self, entry: AuditEntry, usage: UsageEntry | None) -> None:
        await self._append(entry, usage)
        if usage is not None:
            self.budget.add(usage.tenant, usage.cost_eur, usage.time)

    async def _flush_refusals(self, *, all_minutes: bool = False) -> None:
        """Stores the counted unauthenticated refusals of finished minutes, one per reason."""
        pending = self.refusals.take(self._clock(), all_minutes=all_minutes)
        while pending:
            minute, (action, status, reason), count = pending[0]
            entry = AuditEntry(
                time=iso_time(minute + 59.999),
                request_id="",
                tenant="",
                key_id="",
                model="",
                action=AGGREGATE_ACTION,
                outcome="refused",
                status=status,
                reason=redact(
                    f"count={count} unauthenticated refusals of {action} in the minute from "
                    f"{iso_time(minute)} beyond the first {self.refusals.per_minute} "
                    f"(stored one by one): {reason}"
                ),
            )
            try:
                await self._append(clipped(entry), None)
            except Exception:
                self.refusals.restore(pending)  # written with a later flush
                raise
            pending.pop(0)

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
            model=clip(r.model),
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
        if not tenant and outcome == "refused":  # no valid key: bounded like record()
            await asyncio.shield(self._flush_refusals())
            if not self.refusals.admit(action, status, reason, self._clock()):
                return
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
        await asyncio.shield(self._append(clipped(entry), None))

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
                await self._flush_refusals()
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
    store = SqliteStore(Path(db_path), audit_key=load_audit_key(environ, runs))
    return Accounts(
        store,
        hasher,
        tiers,
        clock=clock,
        rotation_check_s=check_s,
        bootstrap=bootstrap,
    )
