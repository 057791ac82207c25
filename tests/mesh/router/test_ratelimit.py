from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from accounts_testkit import FakeClock

from mesh.config import ConfigError
from mesh.errors import QuotaExceeded, RateLimited
from mesh.router.ratelimit import Budget, CallLimiter, Limiter, format_reset
from mesh.router.tenants import DEFAULT_TIERS, load_tiers

FREE = replace(
    DEFAULT_TIERS["free"], requests_per_minute=5, tokens_per_minute=1000, concurrent_requests=0
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.012, "12ms"),
        (0.0001, "1ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (12, "12s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (90.25, "1m30.25s"),
        (3725, "1h2m5s"),
    ],
)
def test_reset_durations_read_like_openai(seconds: float, text: str) -> None:
    assert format_reset(seconds) == text


def test_sixth_request_in_a_minute_waits_retry_after() -> None:
    clock = FakeClock()
    limiter = Limiter(clock)
    for _ in range(5):
        limiter.release(limiter.acquire("t", FREE, 1), 1)
        clock.advance(2)
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("t", FREE, 1)
    err = refused.value
    assert err.code == "rate_limit_exceeded" and err.http_status == 429
    assert err.retry_after == pytest.approx(50.0)  # the first request leaves the window at T0+60
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.headers["x-ratelimit-limit-requests"] == "5"
    clock.advance(err.retry_after - 0.01)
    with pytest.raises(RateLimited):
        limiter.acquire("t", FREE, 1)
    clock.advance(0.01)
    assert limiter.acquire("t", FREE, 1).headers["x-ratelimit-remaining-requests"] == "0"


def test_success_carries_all_six_headers() -> None:
    ticket = Limiter(FakeClock()).acquire("t", FREE, 100)
    assert ticket.headers == {
        "x-ratelimit-limit-requests": "5",
        "x-ratelimit-remaining-requests": "4",
        "x-ratelimit-reset-requests": "1m0s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "900",
        "x-ratelimit-reset-tokens": "1m0s",
    }


def test_tokens_admit_on_estimate_and_reconcile_on_release() -> None:
    clock = FakeClock()
    limiter = Limiter(clock)
    first = limiter.acquire("t", FREE, 600)
    with pytest.raises(RateLimited) as refused:
        limiter.acquire("t", FREE, 600)
    assert "tokens per minute" in refused.value.message
    limiter.release(first, 100)  # it really used 100
    limiter.acquire("t", FREE, 600)
    with pytest.raises(RateLimited, match="too large"):
        limiter.acquire("other", FREE, 1001)


def test_tenants_are_limited_separately_and_refusals_consume_nothing() -> None:
    limiter = Limiter(FakeClock())
    for _ in range(5):
        limiter.acquire("a", FREE, 0)
    for _ in range(3):
        with pytest.raises(RateLimited):
            limiter.acquire("a", FREE, 0)
    limiter.acquire("b", FREE, 0)


def test_concurrency_limit_frees_on_release() -> None:
    tier = replace(FREE, concurrent_requests=2, requests_per_minute=0, tokens_per_minute=0)
    limiter = Limiter(FakeClock())
    a, _b = limiter.acquire("t", tier, 0), limiter.acquire("t", tier, 0)
    with pytest.raises(RateLimited, match="concurrent"):
        limiter.acquire("t", tier, 0)
    limiter.release(a, 0)
    limiter.release(a, 0)  # idempotent
    limiter.acquire("t", tier, 0)
    with pytest.raises(RateLimited):
        limiter.acquire("t", tier, 0)


def test_monthly_budget_then_a_new_month() -> None:
    clock = FakeClock()
    budget = Budget(clock)
    tier = replace(FREE, monthly_budget_eur=Decimal("1"))
    budget.add("t", Decimal("0.999999"), clock())
    budget.check("t", tier)
    budget.add("t", Decimal("0.000001"), clock())
    with pytest.raises(QuotaExceeded) as refused:
        budget.check("t", tier)
    assert refused.value.code == "insufficient_quota" and refused.value.http_status == 429
    clock.advance(32 * 86400)
    budget.check("t", tier)


def test_budget_held_for_requests_in_flight_counts_until_released() -> None:
    clock = FakeClock()
    budget = Budget(clock)
    tier = replace(FREE, monthly_budget_eur=Decimal("1"))
    first = budget.hold("t", Decimal("0.6"))
    budget.check("t", tier)  # 0.6 in flight < 1: the next is admitted
    second = budget.hold("t", Decimal("0.5"))
    with pytest.raises(QuotaExceeded) as refused:
        budget.check("t", tier)  # 1.1 in flight
    assert "in flight" in refused.value.message
    budget.check("other", tier)  # per tenant
    budget.add("t", Decimal("0.1"), clock())  # the first settled: its real cost...
    budget.release(first)  # ...replaces its hold
    budget.release(first)  # idempotent
    budget.check("t", tier)
    budget.release(second)
    assert budget.held("t") == 0


def test_call_limiter_allows_n_per_window_per_key() -> None:
    clock = FakeClock()
    calls = CallLimiter(3, 10.0, clock)
    for _ in range(3):
        calls.acquire("k1", "the console summary")
    with pytest.raises(RateLimited) as refused:
        calls.acquire("k1", "the console summary")
    assert refused.value.retry_after == pytest.approx(10.0)
    calls.acquire("k2", "the console summary")  # per key
    clock.advance(10.0)
    calls.acquire("k1", "the console summary")


def test_tiers_from_config() -> None:
    tiers = load_tiers(
        {
            "tiers": {
                "free": {"requests_per_minute": 5, "monthly_budget_eur": "2.5"},
                "gold": {"weight": 6},
            }
        }
    )
    assert tiers["free"].requests_per_minute == 5 and tiers["free"].monthly_budget_eur == Decimal(
        "2.5"
    )
    assert tiers["free"].tokens_per_minute == DEFAULT_TIERS["free"].tokens_per_minute
    assert tiers["gold"].weight == 6 and set(DEFAULT_TIERS) < set(tiers)
    with pytest.raises(ConfigError, match="requests_per_minute"):
        load_tiers({"tiers": {"free": {"requests_per_minute": -1}}})
    with pytest.raises(ConfigError, match="unknown setting"):
        load_tiers({"tiers": {"free": {"rpm": 1}}})
