"""Alert rules: loaded from the `[[alerts]]` tables of the TOML config, evaluated over
`Observations`. Pure functions; the runtime (state, webhook) is `mesh.alerts`.

    [[alerts]]
    name = "ttft_p95_high"
    expr = "ttft_p95_seconds"   # ttft_p95_seconds | error_rate | queue_depth
                                # | worker_down | tenant_budget_ratio | audit_write_failing
    threshold = 2.0             # fires while value > threshold ...
    for_seconds = 120           # ... for at least this long
    window_seconds = 300        # the sliding window the value is computed over
    min_samples = 20            # optional: fewer requests in the window -> no value
    severity = "warning"        # optional
    model = "smollm2:135m"      # optional: only this model

Values, per group (each group fires and resolves on its own):
  ttft_p95_seconds     per model: p95 of time-to-first-token of requests in the window;
  error_rate           per model: share of 5xx among requests in the window (0..1);
  queue_depth          per worker: waiting sequences in its latest snapshot in the window;
  worker_down          per worker: 1 while reported down (absent when up): threshold 0,
                       for_seconds = how long it may stay down (like `up == 0` + `for`);
  tenant_budget_ratio  per tenant: spend / budget of the current period;
  audit_write_failing  the mesh: `llmaas_audit_write_failing` of this process (1 while the
                       router's audit/usage writes fail and requests are refused 503
                       audit_unavailable); absent where no process defines the gauge.
`deploy/prometheus/alerts.yml` holds the same rules in PromQL.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry

from mesh.config import ConfigError
from mesh.observations import Observations

Labels = tuple[tuple[str, str], ...]  # sorted (key, value) pairs: hashable, a group id


@dataclass(frozen=True, slots=True)
class AlertRule:
    name: str
    expr: str
    threshold: float
    for_seconds: float = 0.0
    window_seconds: float = 300.0
    min_samples: int = 1
    severity: str = "warning"
    model: str | None = None


DEFAULT_RULES = (
    AlertRule("ttft_p95_high", "ttft_p95_seconds", 2.0, 120, 300, min_samples=20),
    AlertRule("error_rate_high", "error_rate", 0.05, 120, 300, min_samples=20, severity="critical"),
    AlertRule("queue_backlog", "queue_depth", 32, 60, 60),
    AlertRule("worker_down", "worker_down", 0, 30, 60, severity="critical"),
    AlertRule("tenant_budget_nearly_spent", "tenant_budget_ratio", 0.9, 0, 300, severity="info"),
    # Requests are being refused (fail closed) until the store is writable again: page.
    AlertRule("audit_write_failing", "audit_write_failing", 0, 60, 60, severity="critical"),
)
# The gauge mesh.router.accounts sets (read by name: this module stays below mesh.router).
AUDIT_WRITE_FAILING_METRIC = "llmaas_audit_write_failing"


def load_rules(config: dict[str, Any]) -> list[AlertRule]:
    """The `[[alerts]]` rules of a parsed config; the defaults when there are none."""
    tables = config.get("alerts")
    if not tables:
        return list(DEFAULT_RULES)
    if not isinstance(tables, list):
        raise ConfigError("alerts: expected an array of tables ([[alerts]])")
    rules = [_rule(i, t) for i, t in enumerate(tables)]
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"alerts: rule names must be unique, got {names}")
    return rules


def _rule(index: int, table: dict[str, Any]) -> AlertRule:
    where = f"alerts[{index}]"
    expr = table.get("expr", table.get("kind"))
    if expr not in EVALUATORS:
        raise ConfigError(f"{where}.expr={expr!r}: expected one of {sorted(EVALUATORS)}")
    unknown = set(table) - {"name", "expr", "kind", *AlertRule.__dataclass_fields__}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    try:
        rule = AlertRule(
            name=str(table.get("name") or expr),
            expr=expr,
            threshold=float(table["threshold"]),
            for_seconds=float(table.get("for_seconds", 0)),
            window_seconds=float(table.get("window_seconds", 300)),
            min_samples=int(table.get("min_samples", 1)),
            severity=str(table.get("severity", "warning")),
            model=table.get("model"),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: missing {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if rule.window_seconds <= 0 or rule.for_seconds < 0:
        raise ConfigError(f"{where}: window_seconds must be > 0 and for_seconds >= 0")
    return rule


def evaluate(rule: AlertRule, obs: Observations, now: float) -> dict[Labels, float]:
    """The rule's current value for every group that has one."""
    return EVALUATORS[rule.expr](rule, obs, now)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _by_model(rule: AlertRule, obs: Observations, now: float) -> dict[str, list]:
    groups: dict[str, list] = defaultdict(list)
    for rec in obs.requests_since(now - rule.window_seconds):
        if rule.model is None or rec.model == rule.model:
            groups[rec.model].append(rec)
    return groups


def _ttft_p95(rule: AlertRule, obs: Observations, now: float) -> dict[Labels, float]:
    out = {}
    for model, recs in _by_model(rule, obs, now).items():
        ttfts = [r.ttft_s for r in recs if r.ttft_s is not None]
        if len(ttfts) >= max(1, rule.min_samples):
            out[(("model", model),)] = percentile(ttfts, 0.95)
    return out


def _error_rate(rule: AlertRule, obs: Observations, now: float) -> dict[Labels, float]:
    out = {}
    for model, recs in _by_model(rule, obs, now).items():
        if len(recs) >= max(1, rule.min_samples):
            out[(("model", model),)] = sum(r.is_error for r in recs) / len(recs)
    return out


def _queue_depth(rule: AlertRule, obs: Observations, now: float) -> dict[Labels, float]:
    return {
        (("model", w.model), ("worker", w.worker)): float(w.waiting)
        for w in obs.workers()
        if w.up and w.t >= now - rule.window_seconds and rule.model in (None, w.model)
    }


def _worker_down(rule: AlertRule, obs: Observations, now: float) -> dict[Labels, float]:
    return {
        (("model", w.model), ("worker", w.worker)): 1.0
        for w in obs.workers()
        if obs.down_since(w.worker) is not None and rule.model in (None, w.model)
    }


def _budget(rule: AlertRule, obs: Observations, now: float) -> dict[Labels, float]:
    return {(("tenant", tenant),): ratio for tenant, (_t, ratio) in obs.budgets().items()}


def _audit_write_failing(
    rule: AlertRule, obs: Observations, now: float, registry: CollectorRegistry = REGISTRY
) -> dict[Labels, float]:
    value = registry.get_sample_value(AUDIT_WRITE_FAILING_METRIC)
    return {} if value is None else {(): value}


EVALUATORS: dict[str, Callable[[AlertRule, Observations, float], dict[Labels, float]]] = {
    "ttft_p95_seconds": _ttft_p95,
    "error_rate": _error_rate,
    "queue_depth": _queue_depth,
    "worker_down": _worker_down,
    "tenant_budget_ratio": _budget,
    "audit_write_failing": _audit_write_failing,
}
