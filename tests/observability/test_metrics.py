"""Metric helpers, the per-process metrics server, the edge's merged /metrics, deploy assets."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client import start_http_server as prom_http_server
from prometheus_client.parser import text_string_to_metric_families

import mesh.router.accounts  # noqa: F401 - registers llmaas_audit_write_failing (alerts.yml)
from mesh import metrics as m
from mesh import metrics_http
from mesh.alert_rules import DEFAULT_RULES
from mesh.config import ConfigError
from mesh.errors import RateLimited
from mesh.metrics_http import (
    merge_texts,
    metrics_endpoint,
    metrics_port,
    render_mesh_metrics,
    start_metrics_server,
)

ROOT = Path(__file__).resolve().parents[2]


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_request_tokens_cost_helpers():
    before = value("llmaas_requests_total", model="t1", tenant="a", status="429")
    m.observe_request("t1", "a", m.status_of(RateLimited("slow down")), duration_s=0.01)
    assert value("llmaas_requests_total", model="t1", tenant="a", status="429") == before + 1
    assert m.status_of(None) == "200" and m.status_of(ValueError()) == "500"

    usage = SimpleNamespace(
        prompt_tokens=40, completion_tokens=15, reasoning_tokens=5, system_tokens=26
    )
    m.observe_usage("t1", "a", usage)
    assert value("llmaas_tokens_total", model="t1", tenant="a", type="input") == 14
    assert value("llmaas_tokens_total", model="t1", tenant="a", type="system") == 26
    assert value("llmaas_tokens_total", model="t1", tenant="a", type="output") == 10
    assert value("llmaas_tokens_total", model="t1", tenant="a", type="reasoning") == 5

    m.observe_cost("t1", "a", "0.000123", "0.0000015")
    assert value("llmaas_cost_eur_total", model="t1", tenant="a") == pytest.approx(0.000123)
    assert value("llmaas_energy_kwh_total", model="t1", tenant="a") == pytest.approx(1.5e-6)

    m.observe_filter_check("block", ["patterns.ignore_instructions"])
    m.observe_filter_check("allow")
    assert value("llmaas_filter_blocks_total", rule="patterns.ignore_instructions") >= 1
    m.observe_ratelimit_refusal("a", "rpm")
    assert value("llmaas_ratelimit_refusals_total", tenant="a", reason="rpm") >= 1
    m.observe_budget("a", 0.5)
    assert value("llmaas_tenant_budget_used_ratio", tenant="a") == 0.5


def test_request_clock_ttft_and_inter_token():
    clock = m.RequestClock("t2", "a", start=100.0)
    clock.tokens(1, now=100.25)  # first token: TTFT 0.25
    clock.tokens(4, now=100.45)  # 4 tokens in 0.2 s: four gaps of 0.05
    assert clock.ttft_s == pytest.approx(0.25)
    assert clock.finish("200", now=101.0) == pytest.approx(1.0)
    assert value("llmaas_time_to_first_token_seconds_count", model="t2") == 1
    assert value("llmaas_time_to_first_token_seconds_sum", model="t2") == pytest.approx(0.25)
    assert value("llmaas_inter_token_latency_seconds_count", model="t2") == 4
    assert value("llmaas_inter_token_latency_seconds_sum", model="t2") == pytest.approx(0.2)
    assert value("llmaas_request_duration_seconds_sum", model="t2") == pytest.approx(1.0)


def test_worker_gauges_and_vllm_aliases():
    m.observe_worker_load("w9", "t3", running=3, waiting=7, kv_usage=0.42)
    assert value("llmaas_worker_queue_depth", worker="w9", model="t3") == 7
    m.forget_worker("w9")
    assert (
        REGISTRY.get_sample_value("llmaas_worker_queue_depth", {"worker": "w9", "model": "t3"})
        is None
    )
    m.observe_engine_load("t3", running=2, waiting=1, kv_usage=0.3)
    text = generate_latest(REGISTRY).decode()
    assert 'vllm:num_requests_running{model_name="t3"} 2.0' in text
    assert 'vllm:num_requests_waiting{model_name="t3"} 1.0' in text
    assert 'vllm:gpu_cache_usage_perc{model_name="t3"} 0.3' in text
    assert "_created" not in text

    load = SimpleNamespace(num_running=5, num_waiting=6, kv_cache_usage=0.75)
    m.bind_engine_load("t5", lambda: load)
    assert value("vllm:num_requests_waiting", model_name="t5") == 6
    load.num_waiting = 0  # read at scrape time
    assert value("vllm:num_requests_waiting", model_name="t5") == 0
    assert value("vllm:gpu_cache_usage_perc", model_name="t5") == 0.75


def test_metrics_ports():
    assert metrics_port("router", environ={}) == 9101
    assert metrics_port("filter", environ={}) == 9102
    assert metrics_port("worker", 50062, environ={}) == 9111
    assert metrics_port("worker", environ={"LLMAAS_METRICS_PORT": "9300"}) == 9300
    assert metrics_port("router", environ={"LLMAAS_METRICS_PORT": "off"}) is None
    assert metrics_port("worker", 40123, environ={}) == 9110  # outside the default layout


def test_busy_metrics_port_is_logged_not_fatal(caplog):
    port = start_metrics_server(0)
    assert start_metrics_server(port) is None
    assert "cannot listen" in caplog.text


async def test_metrics_server_and_edge_merge():
    m.observe_request("t4", "a", "200")
    port = start_metrics_server(0)
    async with httpx.AsyncClient() as client:
        own = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    assert 'llmaas_requests_total{model="t4",status="200",tenant="a"}' in own

    # An upstream "router" with its own registry (other process, other numbers).
    reg = CollectorRegistry()
    Counter("llmaas_requests_total", "x", ["model", "tenant", "status"], registry=reg).labels(
        "up-model", "b", "200"
    ).inc(5)
    Gauge("vllm:num_requests_running", "x", ["model_name"], registry=reg).labels("up").set(1)
    Gauge("process_open_fds", "x", registry=reg).set(3)
    server, _ = prom_http_server(0, addr="127.0.0.1", registry=reg)
    url = f"http://127.0.0.1:{server.server_port}/metrics"
    dead = "http://127.0.0.1:9/metrics"
    try:
        text = (await render_mesh_metrics((url, dead), timeout_s=10)).decode()
    finally:
        server.shutdown()
    families = {f.name: f for f in text_string_to_metric_families(text)}  # parses cleanly
    assert text.count("# TYPE llmaas_requests_total ") == 1
    assert 'llmaas_requests_total{model="t4",status="200",tenant="a"}' in text  # local
    assert 'vllm:num_requests_running{model_name="up"} 1.0' in text  # upstream sample
    assert 'llmaas_requests_total{model="up-model",status="200",tenant="b"} 5.0' in text
    assert f'llmaas_metrics_upstream_up{{upstream="{dead}"}} 0.0' in text
    assert f'llmaas_metrics_upstream_up{{upstream="{url}"}} 1.0' in text
    assert "llmaas_requests" in families


def test_merge_prefers_local_samples_and_dedupes():
    local = "# TYPE llmaas_x_total counter\nllmaas_x_total 1.0\n# TYPE llmaas_y gauge\n"
    up1 = '# TYPE llmaas_x_total counter\nllmaas_x_total 9.0\n# TYPE llmaas_y gauge\nllmaas_y{w="1"} 2\n'
    up2 = '# TYPE llmaas_y gauge\nllmaas_y{w="1"} 2\nllmaas_y{w="2"} 3\n# TYPE go_x gauge\ngo_x 1\n'
    fams = {f.name: f for f in merge_texts(local, [up1, up2])}
    assert [s.value for s in fams["llmaas_x"].samples] == [1.0]  # local wins
    assert sorted(s.labels["w"] for s in fams["llmaas_y"].samples) == ["1", "2"]
    assert "go_x" not in fams


# --- who may read the metrics (issue #14 point 4) ------------------------------------------


def _edge_client() -> httpx.AsyncClient:
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    app = Starlette(routes=[Route("/metrics", metrics_endpoint, methods=["GET"])])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge")


async def test_edge_metrics_refuse_anonymous_and_serve_scrape_credentials(monkeypatch):
    monkeypatch.setenv("LLMAAS_METRICS_TOKEN", "scrape-token-1")
    monkeypatch.setenv("LLMAAS_ADMIN_KEY", "sk-admin-1")
    monkeypatch.setattr(metrics_http, "_upstreams", ())  # the local registry only
    m.observe_request("t6", "secret-tenant", "200")
    async with _edge_client() as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        basic = await client.get("/metrics", headers={"Authorization": "Basic scrape-token-1"})
        scrape = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token-1"})
        admin = await client.get("/metrics", headers={"Authorization": "Bearer sk-admin-1"})
    for refused in (anonymous, wrong, basic):
        assert refused.status_code == 401
        assert "secret-tenant" not in refused.text
        error = refused.json()["error"]
        assert (
            error["type"] == "authentication_error" and "LLMAAS_METRICS_TOKEN" in error["message"]
        )
        assert refused.headers["www-authenticate"].startswith("Bearer")
    for ok in (scrape, admin):
        assert ok.status_code == 200
        assert 'tenant="secret-tenant"' in ok.text


async def test_edge_metrics_with_no_credential_configured_serve_nobody(monkeypatch):
    monkeypatch.delenv("LLMAAS_METRICS_TOKEN", raising=False)
    monkeypatch.delenv("LLMAAS_ADMIN_KEY", raising=False)
    monkeypatch.setattr(metrics_http, "_upstreams", ())
    async with _edge_client() as client:
        for header in ("Bearer ", "Bearer", ""):
            reply = await client.get("/metrics", headers={"Authorization": header})
            assert reply.status_code == 401


async def test_component_port_wants_the_token_when_set_and_the_edge_sends_it(monkeypatch):
    monkeypatch.setenv("LLMAAS_METRICS_TOKEN", "scrape-token-2")
    m.observe_request("t7", "tenant-b", "200")
    port = start_metrics_server(0)
    url = f"http://127.0.0.1:{port}/metrics"
    async with httpx.AsyncClient() as client:
        anonymous = await client.get(url)
        scrape = await client.get(url, headers={"Authorization": "Bearer scrape-token-2"})
    assert anonymous.status_code == 401 and "tenant-b" not in anonymous.text
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert scrape.status_code == 200 and 'tenant="tenant-b"' in scrape.text
    # The edge's merge scrapes its upstreams with the same token.
    text = (await render_mesh_metrics((url,), timeout_s=10)).decode()
    assert f'llmaas_metrics_upstream_up{{upstream="{url}"}} 1.0' in text


def test_non_loopback_metrics_bind_needs_a_token():
    with pytest.raises(ConfigError, match="LLMAAS_METRICS_TOKEN"):
        start_metrics_server(0, host="0.0.0.0", environ={})
    with pytest.raises(ConfigError, match="LLMAAS_METRICS_TOKEN"):
        start_metrics_server(0, environ={"LLMAAS_METRICS_HOST": "0.0.0.0"})


def test_prometheus_scrapes_with_a_credential():
    doc = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    for name, job in jobs.items():
        auth = job.get("authorization", {})
        assert auth.get("type", "Bearer") == "Bearer" and auth.get("credentials_file"), name
        for target in (t for sc in job["static_configs"] for t in sc["targets"]):
            assert target.startswith("127.0.0.1:"), (name, target)


# --- deploy assets -----------------------------------------------------------------------


def _known_series() -> set[str]:
    names = set()
    for fam in REGISTRY.collect():
        if fam.name.startswith(("llmaas_", "vllm:")):
            suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
            names.update(fam.name + s for s in suffixes.get(fam.type, [""]))
    return names


def _metric_refs(expr: str) -> set[str]:
    return set(re.findall(r"\b(?:llmaas_[a-z_]+|vllm:[a-z_]+)", expr))


def test_prometheus_rules_are_valid_and_use_real_metrics():
    doc = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    rules = doc["groups"][0]["rules"]
    known = _known_series()
    for rule in rules:
        assert {"alert", "expr", "labels", "annotations"} <= set(rule), rule
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        assert _metric_refs(rule["expr"]) <= known, rule["alert"]
    assert {r["labels"]["llmaas_rule"] for r in rules} == {r.name for r in DEFAULT_RULES}
    yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())


def test_grafana_dashboard_is_valid_and_uses_real_metrics():
    dash = json.loads((ROOT / "deploy/grafana/llmaas-dashboard.json").read_text())
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]
    refs = set().union(*map(_metric_refs, exprs))
    assert refs <= _known_series(), refs - _known_series()
    for needed in (
        "llmaas_requests_total",
        "llmaas_tokens_total",
        "llmaas_time_to_first_token_seconds_bucket",
        "llmaas_inter_token_latency_seconds_bucket",
        "llmaas_worker_queue_depth",
        "llmaas_worker_kv_cache_usage_ratio",
        "llmaas_cost_eur_total",
        "llmaas_energy_kwh_total",
    ):
        assert needed in refs, needed
