"""Durable recording of audit and usage records, failing closed.

`record()` is the one call on the request path that writes, and it returns once the
record is durable. While the last audit/usage write failed and none succeeded since,
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
from collections.abc import Callable
from decimal import Decimal

from prometheus_client import Counter, Gauge

from mesh.errors import Unavailable
from mesh.router.access import Principal, RequestRecord
from mesh.router.audit import AuditEntry, clip, clipped, iso_time, redact
from mesh.router.ratelimit import Budget
from mesh.router.refusals import RefusalSampler
from mesh.router.store import Store, UsageEntry

log = logging.getLogger(__name__)

_BILLED_OUTCOMES = ("ok", "cancelled")
AUDIT_UNAVAILABLE = "audit_unavailable"
AGGREGATE_ACTION = "refusals.aggregate"
RECOVERED_ACTION = "audit.recovered"

# Operator signal (router): 1 while audit/usage writes fail and requests are refused 503.
AUDIT_WRITE_FAILING = Gauge(
    "llmaas_audit_write_failing",
    "1 while audit and usage writes fail (requests are refused 503 audit_unavailable).",
)
AUDIT_WRITE_FAILURES = Counter(
    "llmaas_audit_write_failures_total", "Audit or usage writes that failed."
)


def _system_entry(time: str, action: str, outcome: str, status: int, reason: str) -> AuditEntry:
    """An audit entry of no request, tenant or key (the router's own events)."""
    return AuditEntry(
        time=time,
        request_id="",
        tenant="",
        key_id="",
        model="",
        action=action,
        outcome=outcome,
        status=status,
        reason=reason,
    )


class Recorder:
    """Writes audit/usage records through the Store and tracks whether writing works."""

    def __init__(
        self,
        store: Store,
        budget: Budget,
        refusals: RefusalSampler,
        clock: Callable[[], float],
        probe_interval_s: float,
    ) -> None:
        self._store = store
        self._budget = budget
        self.refusals = refusals
        self._clock = clock
        self._probe_interval_s = probe_interval_s
        self._recording_error = ""
        self._failing_since = 0.0
        self._failures = 0
        self._refused_while_failing = 0
        self._last_probe = 0.0
        self.probe_task: asyncio.Task | None = None

    def ensure_recording(self) -> None:
        """Raises 503 `audit_unavailable` while audit/usage writes fail (fail closed)."""
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
        if (self.probe_task is not None and not self.probe_task.done()) or (
            now - self._last_probe < self._probe_interval_s
        ):
            return
        self._last_probe = now
        with contextlib.suppress(RuntimeError):  # no running loop: the next call probes
            self.probe_task = asyncio.get_running_loop().create_task(
                self.probe_recording(), name="audit-probe"
            )

    async def probe_recording(self) -> bool:
        """One cheap audit write; on success recording is healthy again (and says so)."""
        if not self._recording_error:
            return True
        entry = _system_entry(
            iso_time(self._clock()),
            RECOVERED_ACTION,
            "ok",
            200,
            clip(
                f"audit and usage writes work again after {self._failures} failed write(s) "
                f"since {iso_time(self._failing_since)}; {self._refused_while_failing} "
                f"request(s) refused 503 meanwhile; last error: {self._recording_error}",
                1024,
            ),
        )
        try:
            await self.append(entry, None)
        except Exception:  # noqa: BLE001 - still failing; said again once per probe
            log.error("audit/billing writes still failing: %s", self._recording_error)
        return not self._recording_error

    async def append(self, entry: AuditEntry, usage: UsageEntry | None) -> None:
        """Every audit/usage write goes through here: it tracks whether recording works."""
        try:
            await self._store.append(entry, usage)
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

    async def record(self, record: RequestRecord) -> None:
        """Appends the audit record (and usage when billed); durable when this returns.

        Shielded: a request cancelled while its record is being written still gets it.
        """
        now = self._clock()
        p = record.principal
        tenant, key_id = (p.tenant if p else ""), (record.key_id or (p.key_id if p else ""))
        if self._recording_error and AUDIT_UNAVAILABLE in record.reason:
            return  # refused because recording fails: counted in the recovery record
        if not tenant:
            await asyncio.shield(self.flush_refusals())
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
        usage = usage_of(record, now, tenant, key_id)
        await asyncio.shield(self._persist(clipped(entry), usage))

    async def _persist(self, entry: AuditEntry, usage: UsageEntry | None) -> None:
        await self.append(entry, usage)
        if usage is not None:
            self._budget.add(usage.tenant, usage.cost_eur, usage.time)

    async def flush_refusals(self, *, all_minutes: bool = False) -> None:
        """Stores the counted unauthenticated refusals of finished minutes, one per reason."""
        pending = self.refusals.take(self._clock(), all_minutes=all_minutes)
        while pending:
            minute, (action, status, reason), count = pending[0]
            entry = _system_entry(
                iso_time(minute + 59.999),
                AGGREGATE_ACTION,
                "refused",
                status,
                redact(
                    f"count={count} unauthenticated refusals of {action} in the minute from "
                    f"{iso_time(minute)} beyond the first {self.refusals.per_minute} "
                    f"(stored one by one): {reason}"
                ),
            )
            try:
                await self.append(clipped(entry), None)
            except Exception:
                self.refusals.restore(pending)  # written with a later flush
                raise
            pending.pop(0)

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
            await asyncio.shield(self.flush_refusals())
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
        await asyncio.shield(self.append(clipped(entry), None))


def usage_of(r: RequestRecord, now: float, tenant: str, key_id: str) -> UsageEntry | None:
    """The usage row a record bills, None when nothing is billed."""
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
