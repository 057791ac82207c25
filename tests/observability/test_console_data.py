"""The console summary: totals, per-model stats, aligned series, tenant isolation."""

from __future__ import annotations

import json

import pytest

from mesh.console.data import MAX_POINTS, build_summary
from mesh.observations import RequestSample

NOW = 1_700_000_000.0  # a multiple of 60 + 20 s: buckets are aligned on the minute


def rec(
    dt: float, model: str = "m1", tenant: str = "acme", status: str = "200", **kw
) -> RequestSample:
    base = {
        "ttft_s": 0.1,
        "duration_s": 1.0,
        "input_tokens": 10,
        "output_tokens": 20,
        "cost_eur": 0.0001,
        "energy_kwh": 0.00001,
    }
    return RequestSample(t=NOW - dt, model=model, tenant=tenant, status=status, **{**base, **kw})


RECORDS = [
    rec(10, ttft_s=0.2, request_id="r-new"),
    rec(20, status="503", ttft_s=None, duration_s=0.01, output_tokens=0),
    rec(70, model="m2", tenant="globex", output_tokens=60, duration_s=2.0),
    rec(130, ttft_s=0.4),
    rec(5000),  # outside the hour window
]
ALERTS = [
    {"alertname": "slow", "labels": {"alertname": "slow", "model": "m1"}},
    {"alertname": "down", "labels": {"alertname": "down", "model": "m1", "worker": "w1"}},
    {"alertname": "budget", "labels": {"alertname": "budget", "tenant": "globex"}},
    {"alertname": "budget", "labels": {"alertname": "budget", "tenant": "acme"}},
]


def test_admin_sees_everything():
    s = build_summary(RECORDS, ALERTS, None, now=NOW)
    assert s["scope"] == "admin"
    assert s["totals"]["requests"] == 4 and s["totals"]["errors"] == 1
    assert s["totals"]["error_rate"] == 0.25
    assert s["totals"]["cost_eur"] == pytest.approx(0.0004)
    assert [m["model"] for m in s["models"]] == ["m1", "m2"]
    m1 = s["models"][0]
    assert m1["requests"] == 3 and m1["ttft_p95_s"] == 0.4 and m1["ttft_p50_s"] == 0.2
    assert {t["tenant"] for t in s["tenants"]} == {"acme", "globex"}
    assert len(s["alerts"]) == 4
    assert [h["id"] for h in s["history"]][:1] == ["r-new"]
    assert [h["t"] for h in s["history"]] == sorted((h["t"] for h in s["history"]), reverse=True)
    json.dumps(s)  # serialisable as is


def test_tenant_sees_only_its_own():
    s = build_summary(RECORDS, ALERTS, "acme", now=NOW)
    assert s["scope"] == "tenant" and "tenants" not in s
    assert s["totals"]["requests"] == 3
    assert {h["tenant"] for h in s["history"]} == {"acme"}
    assert [m["model"] for m in s["models"]] == ["m1"]
    assert list(s["series"]["models"]) == ["m1"]
    # model health and its own budget; never worker facts or another tenant's budget
    assert [a["labels"] for a in s["alerts"]] == [
        {"alertname": "slow", "model": "m1"},
        {"alertname": "budget", "tenant": "acme"},
    ]


def test_series_are_aligned_buckets():
    s = build_summary(RECORDS, [], None, now=NOW, window_s=300, bucket_s=60)
    t = s["series"]["t"]
    assert len(t) == 5 and all(x % 60 == 0 for x in t) and t[-1] <= NOW < t[-1] + 60
    m1 = s["series"]["models"]["m1"]
    assert m1["requests"] == [0, 0, 1, 0, 2]
    assert m1["errors"] == [0, 0, 0, 0, 1]
    assert m1["ttft_p95_s"][-1] == 0.2 and m1["ttft_p95_s"][0] is None
    assert s["series"]["models"]["m2"]["output_tokens_per_s"] == [0, 0, 0, 1.0, 0]


def test_empty():
    s = build_summary([], [], "acme", now=NOW)
    assert s["totals"]["requests"] == 0 and s["models"] == [] and s["history"] == []
    assert s["series"]["models"] == {} and len(s["series"]["t"]) == 60


def test_buckets_are_raised_to_fit_at_most_max_points() -> None:
    """A 7-day window at 1-s buckets (604,800 points asked) gets MAX_POINTS at most."""
    records = [rec(i * 3600.0) for i in range(7 * 24)]
    summary = build_summary(records, [], "acme", now=NOW, window_s=7 * 86400, bucket_s=1)
    assert len(summary["series"]["t"]) <= MAX_POINTS
    assert summary["bucket_seconds"] == 7 * 86400 / MAX_POINTS
    assert summary["requested_bucket_seconds"] == 1
    assert sum(summary["series"]["models"]["m1"]["requests"]) == summary["totals"]["requests"]
    # Within the bound, the bucket asked is the bucket used.
    summary = build_summary(records, [], "acme", now=NOW, window_s=3600, bucket_s=60)
    assert (summary["bucket_seconds"], len(summary["series"]["t"])) == (60, 60)
