"""Every Prometheus metric of the mesh, defined once, with one-line helpers for call sites.

Naming: `llmaas_` prefix, unit in the name (`_seconds`, `_eur`, `_kwh`, `_ratio`), counters
end in `_total`. Labels stay low-cardinality: model ids, tenant ids (accounts, bounded),
worker ids, HTTP status codes, filter verdicts/rules, rate-limit reasons.

Who records what (so nothing is counted twice across processes):
- router: requests, tokens, cost, energy, latencies (`RequestClock`), rate-limit refusals,
  tenant budget use, and the `llmaas_worker_*` gauges from the LoadReports it already watches (mesh-wide view);
- filter: `observe_filter_check`;
- worker: `bind_engine_load` / `observe_engine_load` (the vLLM-style `vllm:*` aliases that
  gateways scrape per pod).

Serving the metrics over HTTP lives in `mesh.metrics_http`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Protocol

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# `_created` series double the series count for nothing Prometheus uses here, and they break
# merging several processes' text (the edge's /metrics); off for every mesh process.
disable_created_metrics()

# Latency buckets sized for LLM serving: TTFT spans tens of ms (small model, warm cache) to
# tens of seconds (long prompt, queued); inter-token latency is ms-scale; a whole request can
# take minutes for long generations.
# fmt: off
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75,
                1.0, 1.5, 2.0, 3.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075,
               0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
                    60.0, 120.0, 300.0, 600.0)
# fmt: on

TOKEN_TYPES = ("input", "output", "reasoning", "system")

# --- request path (router) -------------------------------------------------------------
REQUESTS = Counter(
    "llmaas_requests_total",
    "Inference requests finished, by HTTP-equivalent status code.",
    ["model", "tenant", "status"],
)
TOKENS = Counter(
    "llmaas_tokens_total",
    "Tokens processed, by disjoint type "
    "(input excludes system tokens, output excludes reasoning tokens).",
    ["model", "tenant", "type"],
)
COST = Counter("llmaas_cost_eur_total", "Billed cost in euros.", ["model", "tenant"])
ENERGY = Counter("llmaas_energy_kwh_total", "Estimated energy in kWh.", ["model", "tenant"])
TTFT = Histogram(
    "llmaas_time_to_first_token_seconds",
    "Time from request receipt to the first token.",
    ["model"],
    buckets=TTFT_BUCKETS,
)
ITL = Histogram(
    "llmaas_inter_token_latency_seconds",
    "Time between consecutive output tokens.",
    ["model"],
    buckets=ITL_BUCKETS,
)
DURATION = Histogram(
    "llmaas_request_duration_seconds",
    "Time from request receipt to the last byte.",
    ["model"],
    buckets=DURATION_BUCKETS,
)
RATELIMIT_REFUSALS = Counter(
    "llmaas_ratelimit_refusals_total",
    "Requests refused by tier limits or quotas.",
    ["tenant", "reason"],
)
BUDGET_USED = Gauge(
    "llmaas_tenant_budget_used_ratio",
    "Spend of the current budget period / budget (0..1+).",
    ["tenant"],
)

# --- workers (router's mesh-wide view, from LoadReports) ---------------------------------
WORKER_QUEUE = Gauge(
    "llmaas_worker_queue_depth", "Sequences waiting for a slot.", ["worker", "model"]
)
WORKER_RUNNING = Gauge(
    "llmaas_worker_running_sequences", "Sequences being decoded.", ["worker", "model"]
)
WORKER_KV = Gauge(
    "llmaas_worker_kv_cache_usage_ratio",
    "Fraction of KV-cache capacity in use (0..1).",
    ["worker", "model"],
)

# --- vLLM-compatible aliases (worker process) --------------------------------------------
# Same names and semantics as vLLM, so inference gateways / autoscalers that read vLLM pods
# (e.g. the Gateway API inference extension, KEDA recipes) can drive llmaas workers unchanged.
# Colons are legal in Prometheus metric names (reserved for recording rules by convention,
# but vLLM uses them and gateways expect exactly these names).
VLLM_RUNNING = Gauge("vllm:num_requests_running", "Requests being decoded.", ["model_name"])
VLLM_WAITING = Gauge("vllm:num_requests_waiting", "Requests waiting.", ["model_name"])
VLLM_KV = Gauge(
    "vllm:gpu_cache_usage_perc",
    "KV-cache usage, 0..1 (as vLLM: a fraction despite the name).",
    ["model_name"],
)

# --- security filter ---------------------------------------------------------------------
FILTER_CHECKS = Counter(
    "llmaas_filter_checks_total", "Prompts checked by the security filter.", ["verdict"]
)
FILTER_BLOCKS = Counter(
    "llmaas_filter_blocks_total", "Blocked prompts, by rule that matched.", ["rule"]
)


class UsageLike(Protocol):
    """`llmaas.v1.Usage` or anything with the same fields."""

    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    system_tokens: int


def status_of(exc: BaseException | None) -> str:
    """The `status` label: "200" on success, the MeshError's HTTP status, else "500"."""
    if exc is None:
        return "200"
    http = getattr(exc, "http_status", None)
    return str(http) if isinstance(http, int) else "500"


def observe_request(
    model: str,
    tenant: str,
    status: str | int,
    duration_s: float | None = None,
    ttft_s: float | None = None,
) -> None:
    """One finished request (any outcome). Latencies only when known."""
    REQUESTS.labels(model, tenant, str(status)).inc()
    if duration_s is not None:
        DURATION.labels(model).observe(duration_s)
    if ttft_s is not None:
        TTFT.labels(model).observe(ttft_s)


def observe_tokens(
    model: str,
    tenant: str,
    *,
    input: int = 0,
    output: int = 0,  # noqa: A002
    reasoning: int = 0,
    system: int = 0,
) -> None:
    """Token counts by disjoint type (a stacked graph of all four is the true total)."""
    for kind, n in (
        ("input", input),
        ("output", output),
        ("reasoning", reasoning),
        ("system", system),
    ):
        if n > 0:
            TOKENS.labels(model, tenant, kind).inc(n)


def observe_usage(model: str, tenant: str, usage: UsageLike) -> None:
    """Splits a protobuf Usage (prompt includes system, completion includes reasoning)."""
    observe_tokens(
        model,
        tenant,
        input=max(0, usage.prompt_tokens - usage.system_tokens),
        output=max(0, usage.completion_tokens - usage.reasoning_tokens),
        reasoning=usage.reasoning_tokens,
        system=usage.system_tokens,
    )


def observe_cost(
    model: str, tenant: str, cost_eur: Decimal | str | float, energy_kwh: Decimal | str | float
) -> None:
    """Cost and energy of one request; accepts the decimal strings of `llmaas.v1.Cost`."""
    eur, kwh = float(cost_eur or 0), float(energy_kwh or 0)
    if eur > 0:
        COST.labels(model, tenant).inc(eur)
    if kwh > 0:
        ENERGY.labels(model, tenant).inc(kwh)


def observe_ratelimit_refusal(tenant: str, reason: str) -> None:
    """reason: a short fixed word, e.g. "rpm", "tpm", "concurrency", "budget"."""
    RATELIMIT_REFUSALS.labels(tenant, reason).inc()


def observe_budget(tenant: str, used_ratio: float) -> None:
    """Router side: a tenant's spend over its period budget, after each billed request."""
    BUDGET_USED.labels(tenant).set(used_ratio)


def observe_filter_check(verdict: str, rules: Iterable[str] = ()) -> None:
    """verdict: "allow" | "block" | "bypass"; rules: the rule ids that matched a block."""
    FILTER_CHECKS.labels(verdict).inc()
    if verdict == "block":
        for rule in rules:
            FILTER_BLOCKS.labels(rule).inc()


_worker_models: dict[str, set[str]] = {}


def observe_worker_load(
    worker: str, model: str, *, running: int, waiting: int, kv_usage: float
) -> None:
    """Router side: one worker's LoadReport (one call per model the worker serves)."""
    _worker_models.setdefault(worker, set()).add(model)
    WORKER_QUEUE.labels(worker, model).set(waiting)
    WORKER_RUNNING.labels(worker, model).set(running)
    WORKER_KV.labels(worker, model).set(kv_usage)


def forget_worker(worker: str) -> None:
    """Router side: a worker left; drop its series so dashboards don't show stale load."""
    for model in _worker_models.pop(worker, ()):
        for gauge in (WORKER_QUEUE, WORKER_RUNNING, WORKER_KV):
            with contextlib.suppress(KeyError):  # never set, or already gone
                gauge.remove(worker, model)


def observe_engine_load(model: str, *, running: int, waiting: int, kv_usage: float) -> None:
    """Worker side: the vLLM-style gauges of this process's engine."""
    VLLM_RUNNING.labels(model).set(running)
    VLLM_WAITING.labels(model).set(waiting)
    VLLM_KV.labels(model).set(kv_usage)


class LoadLike(Protocol):
    """The worker's `LoadSnapshot` (or `llmaas.v1.LoadReport`)."""

    num_running: int
    num_waiting: int
    kv_cache_usage: float


def bind_engine_load(model: str, load: Callable[[], LoadLike]) -> None:
    """Worker side: the vLLM-style gauges read `load()` at scrape time (nothing per step)."""
    VLLM_RUNNING.labels(model).set_function(lambda: load().num_running)
    VLLM_WAITING.labels(model).set_function(lambda: load().num_waiting)
    VLLM_KV.labels(model).set_function(lambda: load().kv_cache_usage)


class RequestClock:
    """Times one streamed request: TTFT, inter-token gaps and total duration.

    Create it when the request arrives; call `tokens(n)` for each chunk carrying n new
    tokens; call `finish(status)` exactly once. A chunk of n tokens after a gap g counts as
    n inter-token gaps of g/n (the engine emits tokens in batches).
    """

    __slots__ = ("model", "tenant", "start", "first", "last", "_itl")

    def __init__(self, model: str, tenant: str, start: float | None = None) -> None:
        self.model, self.tenant = model, tenant
        self.start = time.perf_counter() if start is None else start
        self.first: float | None = None
        self.last: float | None = None
        self._itl = ITL.labels(model)

    def tokens(self, n: int = 1, now: float | None = None) -> None:
        if n <= 0:
            return
        now = time.perf_counter() if now is None else now
        if self.first is None:
            self.first = now
            n -= 1  # the first token defines TTFT, not an inter-token gap
        elif self.last is not None and n > 0:
            gap = (now - self.last) / n
            for _ in range(n):
                self._itl.observe(gap)
        self.last = now

    @property
    def ttft_s(self) -> float | None:
        return None if self.first is None else self.first - self.start

    def elapsed_s(self, now: float | None = None) -> float:
        return (time.perf_counter() if now is None else now) - self.start

    def finish(self, status: str | int, now: float | None = None) -> float:
        """Records the request; returns its duration in seconds."""
        duration = self.elapsed_s(now)
        observe_request(self.model, self.tenant, status, duration, self.ttft_s)
        return duration
