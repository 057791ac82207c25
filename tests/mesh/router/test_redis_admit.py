"""The Admit step with a remote (shared) budget: the limits and the hold run together, and
whichever is refused leaves nothing behind (#17). Unit tests: a remote-flagged in-process
budget stands in for Redis, whose own behaviour test_redis_limits.py covers."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pipeline_fakes import PRINCIPAL, TieredAccess

from mesh.errors import QuotaExceeded, RateLimited
from mesh.pricing import Prices
from mesh.router.access import Admission, Principal
from mesh.router.pipeline.admit import Admit
from mesh.router.pipeline.call import Call
from mesh.router.ratelimit import Budget, Hold
from mesh.router.tenants import Tier

TIER = Tier("t", 0, 0, 0, Decimal("1"), 1)


class RemoteBudget(Budget):
    """Checks at the hold, as the shared budget does."""

    remote = True

    async def reserve(self, tenant: str, tier: Tier, amount: Decimal) -> Hold:
        self.check(tenant, tier)
        return self.hold(tenant, amount)


class SharedAccess(TieredAccess):
    def __init__(self, limits_refuse: bool = False) -> None:
        super().__init__(TIER)
        self.budget = RemoteBudget(lambda: 0.0)
        self.limits_refuse = limits_refuse

    async def admit(self, principal: Principal, model: str, estimated_tokens: int) -> Admission:
        if self.limits_refuse:
            raise RateLimited("Rate limit reached for requests per minute")
        return await super().admit(principal, model, estimated_tokens)


def _call() -> Call:
    return Call(
        action="chat.completions",
        request_id="r1",
        model="chat:1m",
        principal=PRINCIPAL,
        prompt_estimate=10,
    )


def _admit(access: SharedAccess) -> Admit:
    return Admit(access, lambda call: 2048, lambda call: Prices(input=Decimal("1000")))


async def test_both_granted_the_call_holds_both() -> None:
    access = SharedAccess()
    call = _call()
    await _admit(access)(call, 8)
    assert call.admission is not None and call.hold is not None
    assert access.budget.held("acme") == call.hold.amount > 0


async def test_limits_refused_the_hold_is_released() -> None:
    access = SharedAccess(limits_refuse=True)
    call = _call()
    with pytest.raises(RateLimited):
        await _admit(access)(call, 8)
    assert call.admission is None and call.hold is None
    assert access.budget.held("acme") == 0


async def test_budget_refused_the_admission_is_left_for_finish_to_free() -> None:
    access = SharedAccess()
    access.budget.add("acme", Decimal("1"), 0.0)  # the month's budget is spent
    call = _call()
    with pytest.raises(QuotaExceeded):
        await _admit(access)(call, 8)
    assert call.admission is not None and call.hold is None  # finish() releases it
