"""Per-tenant limits: a sliding-window log for requests and tokens, concurrency, budget.

In memory, per router process (the embedded default runs one router); with LLMAAS_REDIS_URL
the same rules run in Redis, shared by every router (mesh.router.shared: `RedisLimiter` and
`RedisBudget` offer the async `admit`/`settle` and `reserve` used here too). The window is exact: with 5 requests
per minute the 6th within 60 s is refused, and it passes once the oldest request is 60 s
old, which is what `retry_after` says.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from mesh.errors import QuotaExceeded, RateLimited
from mesh.router.access import Admission
from mesh.router.tenants import Tier

WINDOW_S = 60.0


def format_reset(seconds: float) -> str:
    """A duration as OpenAI writes it in x-ratelimit-reset-*: `12ms`, `1s`, `1.5s`, `6m0s`."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    ms = math.ceil(seconds * 1000)
    minutes, ms = divmod(ms, 60_000)
    hours, minutes = divmod(minutes, 60)
    secs = f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


@dataclass(slots=True)
class _Slot:
    """One admitted request inside the window."""

    at: float
    tokens: int
    live: bool = True  # False once it has left the window


@dataclass(slots=True)
class _Window:
    slots: deque[_Slot] = field(default_factory=deque)
    tokens: int = 0
    in_flight: int = 0

    def prune(self, now: float) -> None:
        while self.slots and self.slots[0].at <= now - WINDOW_S:
            slot = self.slots.popleft()
            slot.live = False
            self.tokens -= slot.tokens

    def wait_for_tokens(self, needed: int, limit: int, now: float) -> float:
        # Seconds until enough old slots leave the window to fit `needed` more tokens.
        excess = self.tokens + needed - limit
        for slot in self.slots:
            excess -= slot.tokens
            if excess <= 0:
                return slot.at + WINDOW_S - now
        return WINDOW_S


@dataclass(slots=True)
class Ticket(Admission):
    """An admission holding its concurrency slot and its place in the window."""

    tenant: str = ""
    slot: _Slot | None = None
    released: bool = False


class Limiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._windows: dict[str, _Window] = {}

    def acquire(self, tenant: str, tier: Tier, estimated_tokens: int) -> Ticket:
        """Admits one request or raises RateLimited (nothing is consumed when refused)."""
        now = self._clock()
        w = self._windows.setdefault(tenant, _Window())
        w.prune(now)
        self._check(tenant, tier, w, estimated_tokens, now)
        slot = _Slot(now, estimated_tokens)
        w.slots.append(slot)
        w.tokens += estimated_tokens
        w.in_flight += 1
        return Ticket(
            headers=self._headers(tier, w, now),
            estimated_tokens=estimated_tokens,
            tenant=tenant,
            slot=slot,
        )

    def release(self, ticket: Ticket, actual_tokens: int | None) -> None:
        """Frees the concurrency slot; replaces the token estimate by the real count."""
        if ticket.released:
            return
        ticket.released = True
        w = self._windows.get(ticket.tenant)
        if w is None:
            return
        w.in_flight = max(0, w.in_flight - 1)
        slot = ticket.slot
        if slot is not None and actual_tokens is not None:
            if slot.live:
                w.tokens += actual_tokens - slot.tokens
            slot.tokens = actual_tokens

    def _check(self, tenant: str, tier: Tier, w: _Window, est: int, now: float) -> None:
        if tier.concurrent_requests and w.in_flight >= tier.concurrent_requests:
            raise self._refuse(
                tier,
                w,
                now,
                1.0,
                f"Too many concurrent requests for tenant "
                f"'{tenant}' (tier {tier.name}): limit {tier.concurrent_requests}.",
            )
        rpm = tier.requests_per_minute
        if rpm and len(w.slots) >= rpm:
            wait = w.slots[len(w.slots) - rpm].at + WINDOW_S - now
            raise self._refuse(
                tier,
                w,
                now,
                wait,
                f"Rate limit reached for requests per minute "
                f"for tenant '{tenant}' (tier {tier.name}): limit {rpm}, used {len(w.slots)}.",
            )
        tpm = tier.tokens_per_minute
        if tpm and est > tpm:
            raise self._refuse(
                tier,
                w,
                now,
                WINDOW_S,
                f"Request too large for tokens per minute "
                f"(tier {tier.name}): limit {tpm}, requested {est}. Lower max_tokens "
                "or the prompt size.",
            )
        if tpm and w.tokens + est > tpm:
            wait = w.wait_for_tokens(est, tpm, now)
            raise self._refuse(
                tier,
                w,
                now,
                wait,
                f"Rate limit reached for tokens per minute for "
                f"tenant '{tenant}' (tier {tier.name}): limit {tpm}, used {w.tokens}, "
                f"requested {est}.",
            )

    def _refuse(self, tier: Tier, w: _Window, now: float, wait: float, message: str) -> RateLimited:
        wait = max(wait, 0.001)
        return RateLimited(
            f"{message} Please try again in {format_reset(wait)}.",
            code="rate_limit_exceeded",
            retry_after=wait,
            headers=self._headers(tier, w, now),
        )

    @staticmethod
    def _headers(tier: Tier, w: _Window, now: float) -> dict[str, str]:
        # reset = time until the window is back to its full allowance (OpenAI's meaning).
        reset = w.slots[-1].at + WINDOW_S - now if w.slots else 0.0
        return limit_headers(tier, len(w.slots), w.tokens, reset)

    async def admit(self, tenant: str, tier: Tier, estimated_tokens: int) -> Ticket:
        """`acquire` with the shared limiter's signature (mesh.router.shared.limits)."""
        return self.acquire(tenant, tier, estimated_tokens)

    async def settle(self, admission: Admission, actual_tokens: int | None) -> None:
        """`release` with the shared limiter's signature; other admissions are ignored."""
        if isinstance(admission, Ticket):
            self.release(admission, actual_tokens)


def limit_headers(tier: Tier, requests: int, tokens: int, reset: float) -> dict[str, str]:
    """x-ratelimit-* for `requests` and `tokens` used in the window, full again in `reset` s."""
    headers: dict[str, str] = {}
    if tier.requests_per_minute:
        headers["x-ratelimit-limit-requests"] = str(tier.requests_per_minute)
        headers["x-ratelimit-remaining-requests"] = str(max(0, tier.requests_per_minute - requests))
        headers["x-ratelimit-reset-requests"] = format_reset(reset)
    if tier.tokens_per_minute:
        headers["x-ratelimit-limit-tokens"] = str(tier.tokens_per_minute)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, tier.tokens_per_minute - tokens))
        headers["x-ratelimit-reset-tokens"] = format_reset(reset)
    return headers


def month_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


@dataclass(slots=True)
class Hold:
    """Budget reserved for one request in flight (its estimated cost) until it settles."""

    tenant: str
    amount: Decimal
    released: bool = False
    hold_id: str = ""  # the shared budget's lease (mesh.router.shared.budget)


class Budget:
    """Month-to-date spend per tenant (seeded from the store at start, then kept in memory),
    plus what requests in flight are expected to cost (`hold`), so that concurrent requests
    cannot each pass the check against the same remaining budget."""

    remote = False  # checks are local (no round trip): see mesh.router.shared.budget

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._month = month_of(clock())
        self._spent: dict[str, Decimal] = {}
        self._held: dict[str, Decimal] = {}

    @property
    def month(self) -> str:
        return self._month

    def seed(self, month: str, spent: dict[str, Decimal]) -> None:
        self._month, self._spent = month, dict(spent)

    def add(self, tenant: str, cost: Decimal, at: float) -> None:
        month = month_of(at)
        if month != self._month:
            self.seed(month, {})
        self._spent[tenant] = self._spent.get(tenant, Decimal(0)) + cost

    def spent(self, tenant: str) -> Decimal:
        if month_of(self._clock()) != self._month:
            return Decimal(0)
        return self._spent.get(tenant, Decimal(0))

    def held(self, tenant: str) -> Decimal:
        return self._held.get(tenant, Decimal(0))

    def hold(self, tenant: str, amount: Decimal) -> Hold:
        """Reserves `amount` (a request's estimated cost) until `release(hold)`."""
        amount = max(Decimal(0), amount)
        self._held[tenant] = self.held(tenant) + amount
        return Hold(tenant, amount)

    async def reserve(self, tenant: str, tier: Tier, amount: Decimal) -> Hold:
        """`hold` with the shared budget's signature (the check was made at admission)."""
        return self.hold(tenant, amount)

    def release(self, hold: Hold) -> None:
        """Ends a reservation (after the real cost was added); idempotent."""
        if hold.released:
            return
        hold.released = True
        left = self.held(hold.tenant) - hold.amount
        if left > 0:
            self._held[hold.tenant] = left
        else:
            self._held.pop(hold.tenant, None)

    def check(self, tenant: str, tier: Tier) -> None:
        """Raises QuotaExceeded once the month's spend plus what requests in flight are
        expected to cost reached the tier's budget.

        A request's real cost can exceed its estimate (and requests already running finish),
        so the spend can still pass the budget by that difference.
        """
        budget = tier.monthly_budget_eur
        if not budget:
            return
        spent, held = self.spent(tenant), self.held(tenant)
        if spent + held >= budget:
            raise over_budget(tenant, tier, held)


def over_budget(tenant: str, tier: Tier, held: Decimal) -> QuotaExceeded:
    in_flight = f" ({held:.6f} EUR of it reserved for requests in flight)" if held else ""
    return QuotaExceeded(
        f"You exceeded your monthly budget of {tier.monthly_budget_eur} EUR for tenant "
        f"'{tenant}' (tier {tier.name}){in_flight}; it renews on the 1st. Ask your "
        "administrator for a higher tier.",
        code="insufficient_quota",
    )


class CallLimiter:
    """At most `limit` calls per `window_s` per key (a sliding log), for costly reads such
    as the console summary; refusals consume nothing."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float]) -> None:
        self._limit, self._window_s, self._clock = limit, window_s, clock
        self._calls: dict[str, deque[float]] = {}

    def acquire(self, key: str, what: str) -> None:
        now = self._clock()
        calls = self._calls.setdefault(key, deque())
        while calls and calls[0] <= now - self._window_s:
            calls.popleft()
        if len(calls) >= self._limit:
            wait = max(0.001, calls[0] + self._window_s - now)
            raise RateLimited(
                f"Rate limit reached for {what}: at most {self._limit} calls per "
                f"{self._window_s:g} s per API key. Please try again in {format_reset(wait)}.",
                code="rate_limit_exceeded",
                retry_after=wait,
            )
        calls.append(now)
        if len(self._calls) > 10_000:  # keys that stopped calling: drop the idle ones
            for k in [k for k, c in self._calls.items() if not c or c[-1] <= now - self._window_s]:
                del self._calls[k]
