"""Step 3: admission: the tier's rate limits, and the estimated cost held against the budget.

The limiter counts an estimate of the request's tokens until the real usage replaces it
(at settle): the prompt estimate plus the output it may generate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

from mesh import metrics
from mesh.errors import MeshError, QuotaExceeded, RateLimited
from mesh.pricing import Prices
from mesh.router.access import AccessControl, Principal
from mesh.router.accounting import TokenCounts, cost_eur
from mesh.router.pipeline.call import Call
from mesh.router.ratelimit import Hold
from mesh.router.tenants import Tier

T = TypeVar("T")

# Without max_tokens and without a known window, the output estimate for the rate limiter.
DEFAULT_OUTPUT_ESTIMATE = 256


def tier_of(access: AccessControl, principal: Principal | None) -> Tier | None:
    """The caller's billing tier, where the accounts know tiers (None otherwise)."""
    return None if principal is None else access.tier(principal.tier)


def fair_weight(access: AccessControl, principal: Principal | None) -> float:
    """The tenant's fair-queue weight (its billing tier's `weight`; 1 without tiers)."""
    tier = tier_of(access, principal)
    return 1.0 if tier is None else float(max(1, tier.weight))


def output_estimate(call: Call, max_tokens: int, window: int, tier: Tier | None) -> int:
    """Output tokens the rate limiter counts until the real usage replaces them: max_tokens,
    else the rest of the window (what the request may generate), capped by the tier's
    tokens per minute (an unbounded request must not be refused as too large)."""
    if max_tokens:
        return max_tokens
    if not window:
        return DEFAULT_OUTPUT_ESTIMATE
    output = max(0, window - call.prompt_estimate)
    if tier is not None and tier.tokens_per_minute:
        output = max(0, min(output, tier.tokens_per_minute - call.prompt_estimate))
    return output


def refusal_reason(err: MeshError) -> str:
    """A short fixed word for the rate-limit refusal metric (never free text)."""
    if isinstance(err, QuotaExceeded):
        return "budget"
    text = err.message.lower()
    for needle, reason in (
        ("concurrent", "concurrency"),
        ("requests per minute", "rpm"),
        ("tokens per minute", "tpm"),
    ):
        if needle in text:
            return reason
    return "other"


class Admit:
    """Admits a resolved, authorised call: the limits, then the budget hold (both at once
    where they are round trips to shared state)."""

    def __init__(
        self,
        access: AccessControl,
        window: Callable[[Call], int],
        prices: Callable[[Call], Prices],
    ) -> None:
        self._access, self._window, self._prices = access, window, prices

    async def __call__(self, call: Call, max_tokens: int | None, *, choices: int = 1) -> None:
        """`max_tokens` None: no output (embeddings); `choices` (n) sequences may each
        generate it. Raises RateLimited / QuotaExceeded."""
        output = 0
        if max_tokens is not None:
            tier = tier_of(self._access, call.principal) if not max_tokens else None
            window = self._window(call) if not max_tokens else 0
            output = output_estimate(call, max_tokens, window, tier)
            if max_tokens:  # an unbounded request's estimate stays within the tier's limit
                output *= max(1, choices)
        admitting = self._access.admit(call.principal, call.model, call.prompt_estimate + output)
        budget = self._access.budget
        if budget is not None and budget.remote:
            # Shared state (Redis): the limits and the budget hold are a round trip each,
            # taken together; whichever is refused undoes the other (finish() frees the
            # admission, the hold is released here).
            admitted, held = await asyncio.gather(
                admitting, self._hold_budget(call, output), return_exceptions=True
            )
            if isinstance(admitted, BaseException) and isinstance(held, Hold):
                budget.release(held)
        else:
            admitted, held = await _outcome(admitting), None
        if isinstance(admitted, BaseException):
            self._refused(call, admitted)
        call.admission = admitted
        call.headers.update({k.lower(): v for k, v in call.admission.headers.items()})
        if budget is not None and not budget.remote:
            held = await _outcome(self._hold_budget(call, output))
        if isinstance(held, BaseException):
            self._refused(call, held)  # a shared budget decides at the hold (atomic)
        call.hold = held

    @staticmethod
    def _refused(call: Call, err: BaseException) -> NoReturn:
        if isinstance(err, RateLimited | QuotaExceeded):
            metrics.observe_ratelimit_refusal(call.principal.tenant, refusal_reason(err))
        raise err

    async def _hold_budget(self, call: Call, output: int) -> Hold | None:
        """Holds the request's estimated cost against the tenant's budget until settle, so
        the next admission counts what requests in flight will cost."""
        budget = self._access.budget
        if budget is None or call.principal is None:
            return None
        estimate = cost_eur(TokenCounts(call.prompt_estimate, output), self._prices(call))
        tier = tier_of(self._access, call.principal)
        return await budget.reserve(call.principal.tenant, tier, estimate)


async def _outcome(awaitable: Awaitable[T]) -> T | BaseException:
    """What `gather(..., return_exceptions=True)` gives, for one awaitable."""
    try:
        return await awaitable
    except Exception as err:  # noqa: BLE001 - handed back, raised by the caller
        return err
