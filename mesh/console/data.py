"""The console's JSON: usage, latency and throughput per model over time, alerts, history.

`build_summary` is pure: the router calls it with its `Observations.records()` and
`Alerts.firing()`, and the caller's tenant (None for an admin key: everything; a tenant:
only its own requests, alerts about itself and model-health alerts, never worker or other
tenants' facts).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from mesh.alert_rules import percentile
from mesh.observations import RequestSample

Summary = dict[str, Any]

# Points per series at most: a coarser bucket is used when the window asks for more (the
# reply's bucket_seconds says which; requested_bucket_seconds what was asked), so the
# summary's size and build time stay bounded whatever the caller asks.
MAX_POINTS = 1440


def fit_bucket(window_s: float, bucket_s: float, max_points: int = MAX_POINTS) -> float:
    """`bucket_s`, raised (to whole seconds) when the window would need more points."""
    if window_s / bucket_s <= max_points:
        return bucket_s
    return float(math.ceil(window_s / max_points))


def build_summary(
    records: Iterable[RequestSample],
    alerts: Sequence[dict[str, Any]],
    tenant: str | None,
    *,
    now: float | None = None,
    window_s: float = 3600,
    bucket_s: float = 60,
    history_limit: int = 50,
) -> Summary:
    now = time.time() if now is None else now
    requested_bucket_s, bucket_s = bucket_s, fit_bucket(window_s, bucket_s)
    recs = [
        r
        for r in records
        if r.t >= now - window_s and r.t <= now and (tenant is None or r.tenant == tenant)
    ]
    summary: Summary = {
        "generated_at": datetime.fromtimestamp(now, UTC).isoformat(),
        "scope": "admin" if tenant is None else "tenant",
        "tenant": tenant,
        "window_seconds": window_s,
        "bucket_seconds": bucket_s,
        "requested_bucket_seconds": requested_bucket_s,
        "max_points": MAX_POINTS,
        "totals": _totals(recs),
        "models": _per_model(recs),
        "series": _series(recs, now, window_s, bucket_s),
        "alerts": [a for a in alerts if _visible(a, tenant)],
        "history": [_history_row(r) for r in sorted(recs, key=lambda r: -r.t)[:history_limit]],
    }
    if tenant is None:
        summary["tenants"] = _per_tenant(recs)
    return summary


def _totals(recs: list[RequestSample]) -> dict[str, Any]:
    errors = sum(r.is_error for r in recs)
    return {
        "requests": len(recs),
        "errors": errors,
        "error_rate": round(errors / len(recs), 4) if recs else 0.0,
        "input_tokens": sum(r.input_tokens for r in recs),
        "output_tokens": sum(r.output_tokens for r in recs),
        "reasoning_tokens": sum(r.reasoning_tokens for r in recs),
        "cost_eur": round(sum(r.cost_eur for r in recs), 6),
        "energy_kwh": round(sum(r.energy_kwh for r in recs), 6),
    }


def _p(values: list[float], q: float) -> float | None:
    return round(percentile(values, q), 4) if values else None


def _per_model(recs: list[RequestSample]) -> list[dict[str, Any]]:
    groups: dict[str, list[RequestSample]] = defaultdict(list)
    for r in recs:
        groups[r.model].append(r)
    rows = []
    for model, rs in groups.items():
        ttfts = [r.ttft_s for r in rs if r.ttft_s is not None]
        durations = [r.duration_s for r in rs if r.duration_s is not None]
        timed = [r for r in rs if r.duration_s]
        rows.append(
            {
                "model": model,
                **_totals(rs),
                "ttft_p50_s": _p(ttfts, 0.5),
                "ttft_p95_s": _p(ttfts, 0.95),
                "latency_p50_s": _p(durations, 0.5),
                "latency_p95_s": _p(durations, 0.95),
                # Per-request generation speed, as a user feels it (not aggregate throughput).
                "tokens_per_s_per_request": round(
                    sum(r.output_tokens for r in timed) / sum(r.duration_s for r in timed), 2
                )
                if timed
                else None,
            }
        )
    return sorted(rows, key=lambda row: (-row["requests"], row["model"]))


def _per_tenant(recs: list[RequestSample]) -> list[dict[str, Any]]:
    groups: dict[str, list[RequestSample]] = defaultdict(list)
    for r in recs:
        groups[r.tenant].append(r)
    rows = [{"tenant": t, **_totals(rs)} for t, rs in groups.items()]
    return sorted(rows, key=lambda row: (-row["cost_eur"], row["tenant"]))


def _series(
    recs: list[RequestSample], now: float, window_s: float, bucket_s: float
) -> dict[str, Any]:
    """Per-model time series on aligned buckets (oldest first; null = no data)."""
    n = max(1, math.ceil(window_s / bucket_s))
    first = (math.floor(now / bucket_s) - n + 1) * bucket_s
    per_model: dict[str, list[list[RequestSample]]] = defaultdict(lambda: [[] for _ in range(n)])
    for r in recs:
        i = int((r.t - first) // bucket_s)
        if 0 <= i < n:
            per_model[r.model][i].append(r)
    return {
        "t": [first + i * bucket_s for i in range(n)],
        "models": {
            model: _model_series(buckets, bucket_s) for model, buckets in sorted(per_model.items())
        },
    }


def _model_series(buckets: list[list[RequestSample]], bucket_s: float) -> dict[str, list]:
    return {
        "requests": [len(b) for b in buckets],
        "errors": [sum(r.is_error for r in b) for b in buckets],
        "output_tokens_per_s": [
            round(sum(r.output_tokens for r in b) / bucket_s, 3) for b in buckets
        ],
        "input_tokens": [sum(r.input_tokens for r in b) for b in buckets],
        "ttft_p95_s": [_p([r.ttft_s for r in b if r.ttft_s is not None], 0.95) for b in buckets],
        "latency_p95_s": [
            _p([r.duration_s for r in b if r.duration_s is not None], 0.95) for b in buckets
        ],
    }


def _history_row(r: RequestSample) -> dict[str, Any]:
    return {
        "t": r.t,
        "time": datetime.fromtimestamp(r.t, UTC).isoformat(timespec="seconds"),
        "id": r.request_id,
        "model": r.model,
        "tenant": r.tenant,
        "status": r.status,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "reasoning_tokens": r.reasoning_tokens,
        "cost_eur": round(r.cost_eur, 8),
        "energy_kwh": round(r.energy_kwh, 8),
        "ttft_s": None if r.ttft_s is None else round(r.ttft_s, 4),
        "latency_s": None if r.duration_s is None else round(r.duration_s, 4),
    }


def _visible(alert: dict[str, Any], tenant: str | None) -> bool:
    """Admins see every alert; a tenant sees its own and model-health alerts only."""
    if tenant is None:
        return True
    labels = alert.get("labels", {})
    if "tenant" in labels:
        return labels["tenant"] == tenant
    return "model" in labels and "worker" not in labels
