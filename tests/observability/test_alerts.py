"""Alert rules over synthetic observations, an injected clock, and a real local webhook."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from mesh.alert_rules import (
    AUDIT_WRITE_FAILING_METRIC,
    DEFAULT_RULES,
    AlertRule,
    load_rules,
    percentile,
)
from mesh.alerts import Alerts, WebhookNotifier
from mesh.config import ConfigError
from mesh.observations import Observations, RequestSample


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Receiver:
    """A minimal HTTP/1.1 server: records JSON bodies, answers with the queued statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict] = []
        self.statuses = list(statuses or [])
        self.server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        self.bodies.append(json.loads(await reader.readexactly(length)))
        status = self.statuses.pop(0) if self.statuses else 200
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def receiver():
    rec = Receiver()
    yield rec
    await rec.stop()


def _feed(
    obs: Observations, clock: Clock, n: int, ttft: float, status: str = "200", model: str = "m1"
) -> None:
    for _ in range(n):
        obs.record_request(RequestSample(clock.t, model, "acme", status, ttft_s=ttft))


async def test_webhook_gets_firing_then_resolved(receiver):
    url = await receiver.start()
    clock = Clock()
    obs = Observations(clock=clock)
    rule = AlertRule(
        "slow_ttft", "ttft_p95_seconds", threshold=0.2, for_seconds=10, window_seconds=60
    )
    alerts = Alerts([rule], obs, notifier=WebhookNotifier(url, backoff_s=0.01), clock=clock)
    _feed(obs, clock, 5, ttft=0.05)
    _feed(obs, clock, 5, ttft=0.9)  # p95 of 10 samples = 0.9

    assert await alerts.tick() == []  # breaching, pending (for_seconds not reached)
    clock.t += 5
    assert await alerts.tick() == []
    clock.t += 6
    [fired] = await alerts.tick()
    assert fired["status"] == "firing" and fired["labels"]["model"] == "m1"
    assert [a["alertname"] for a in alerts.firing()] == ["slow_ttft"]
    clock.t += 61  # every sample falls out of the window
    [resolved] = await alerts.tick()
    assert resolved["status"] == "resolved" and alerts.firing() == []
    await alerts.stop()

    assert [b["status"] for b in receiver.bodies] == ["firing", "resolved"]
    first = receiver.bodies[0]
    assert first["version"] == "4" and first["alerts"][0]["labels"] == {
        "alertname": "slow_ttft",
        "severity": "warning",
        "model": "m1",
    }
    assert float(first["alerts"][0]["annotations"]["value"]) == pytest.approx(0.9)
    assert receiver.bodies[1]["alerts"][0]["endsAt"].startswith("2023-11-14")
    assert [e["status"] for e in alerts.history()] == ["resolved", "firing"]


async def test_webhook_retries_are_bounded(receiver):
    receiver.statuses = [503, 500, 200]
    url = await receiver.start()
    notifier = WebhookNotifier(url, retries=3, backoff_s=0.01)
    event = {
        "status": "firing",
        "alertname": "a",
        "expr": "error_rate",
        "labels": {},
        "value": 1.0,
        "threshold": 0.5,
        "summary": "",
        "starts_at": None,
        "ends_at": None,
        "fingerprint": "f",
    }
    await notifier(event)
    assert len(receiver.bodies) == 3
    receiver.statuses = [500] * 10
    await notifier(event)  # gives up after 1 + retries attempts, without raising
    assert len(receiver.bodies) == 3 + 4
    await notifier.aclose()


async def test_dead_webhook_does_not_break_evaluation():
    clock = Clock()
    obs = Observations(clock=clock)
    notifier = WebhookNotifier("http://127.0.0.1:9/none", retries=1, backoff_s=0.01)
    alerts = Alerts([AlertRule("e", "error_rate", 0.5)], obs, notifier=notifier, clock=clock)
    _feed(obs, clock, 3, ttft=0.1, status="503")
    [ev] = await alerts.tick()
    assert ev["status"] == "firing" and alerts.firing()
    await alerts.stop()


async def test_background_task_evaluates_continuously():
    obs = Observations()
    alerts = Alerts([AlertRule("q", "queue_depth", 3)], obs, interval_s=0.01)
    alerts.start()
    obs.record_worker("w1", "m1", waiting=10)
    for _ in range(100):
        if alerts.firing():
            break
        await asyncio.sleep(0.01)
    assert alerts.firing()[0]["labels"]["worker"] == "w1"
    obs.record_worker("w1", "m1", waiting=0)
    await asyncio.sleep(0.05)
    assert alerts.firing() == []
    await alerts.stop()


def test_error_rate_counts_5xx_only_and_needs_min_samples():
    clock = Clock()
    obs = Observations(clock=clock)
    rule = AlertRule("e", "error_rate", 0.2, min_samples=5)
    alerts = Alerts([rule], obs, clock=clock)
    _feed(obs, clock, 3, ttft=0.1, status="503")
    assert alerts.evaluate() == []  # 3 < min_samples
    _feed(obs, clock, 7, ttft=0.1, status="429")  # refusals are not errors
    [ev] = alerts.evaluate()
    assert ev["value"] == pytest.approx(0.3)


def test_worker_down_and_budget_groups():
    clock = Clock()
    obs = Observations(clock=clock)
    alerts = Alerts(
        [
            AlertRule("down", "worker_down", 0, for_seconds=30),
            AlertRule("budget", "tenant_budget_ratio", 0.9),
        ],
        obs,
        clock=clock,
    )
    obs.record_worker("w1", "m1", running=1)
    obs.record_worker("w2", "m1")
    obs.record_worker_down("w2")
    obs.record_budget("acme", 0.95)
    obs.record_budget("globex", 0.5)
    [budget] = alerts.evaluate()
    assert budget["labels"]["tenant"] == "acme"
    clock.t += 31
    [down] = alerts.evaluate()
    assert down["labels"]["worker"] == "w2" and down["value"] == 1.0
    obs.record_worker("w2", "m1")  # back up
    [resolved] = alerts.evaluate()
    assert resolved["status"] == "resolved" and resolved["alertname"] == "down"


def test_load_rules_from_toml_and_defaults():
    import tomllib

    cfg = tomllib.loads("""
[[alerts]]
name = "slow"
expr = "ttft_p95_seconds"
threshold = 1.5
for_seconds = 60
window_seconds = 120
model = "smollm2:135m"
""")
    [rule] = load_rules(cfg)
    assert rule == AlertRule("slow", "ttft_p95_seconds", 1.5, 60, 120, model="smollm2:135m")
    assert load_rules({}) == list(DEFAULT_RULES)
    with pytest.raises(ConfigError, match="expr"):
        load_rules({"alerts": [{"name": "x", "expr": "nope", "threshold": 1}]})
    with pytest.raises(ConfigError, match="threshold"):
        load_rules({"alerts": [{"name": "x", "expr": "error_rate"}]})
    with pytest.raises(ConfigError, match="unknown keys"):
        load_rules({"alerts": [{"expr": "error_rate", "threshold": 1, "thresold": 2}]})


def test_from_config_reads_webhook_env():
    alerts = Alerts.from_config(
        {},
        Observations(),
        environ={"LLMAAS_ALERT_WEBHOOK": "http://x/y", "LLMAAS_ALERT_INTERVAL_S": "2"},
    )
    assert isinstance(alerts.notifier, WebhookNotifier) and alerts.interval_s == 2.0
    assert Alerts.from_config({}, Observations(), environ={}).notifier is None


def test_percentile_nearest_rank():
    assert percentile([1.0], 0.95) == 1.0
    assert percentile([float(i) for i in range(1, 101)], 0.95) == 95.0


def test_observations_are_bounded():
    clock = Clock()
    obs = Observations(retention_s=10, max_records=5, clock=clock)
    _feed(obs, clock, 8, ttft=0.1)
    assert len(obs.records()) == 5
    clock.t += 11
    _feed(obs, clock, 1, ttft=0.1)
    assert len(obs.records()) == 1


# -- audit/usage writes failing ---------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def _seconds(duration: str) -> float:
    """Prometheus' `for` ("30s", "2m", "1h") in seconds."""
    return float(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def test_the_prometheus_rules_and_the_builtin_rules_agree():
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"][0]
    by_name = {r["labels"]["llmaas_rule"]: r for r in rules["rules"]}
    assert set(by_name) == {r.name for r in DEFAULT_RULES}
    for rule in DEFAULT_RULES:
        prom = by_name[rule.name]
        assert prom["labels"]["severity"] == rule.severity, rule.name
        assert _seconds(prom.get("for", "0s")) == rule.for_seconds, rule.name


def test_audit_write_failing_has_a_rule_on_the_accounts_gauge():
    from mesh.router.accounts import AUDIT_WRITE_FAILING

    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"][0]
    [prom] = [r for r in rules["rules"] if r["labels"]["llmaas_rule"] == "audit_write_failing"]
    assert AUDIT_WRITE_FAILING_METRIC in prom["expr"] and prom["labels"]["severity"] == "critical"
    # The metric the rules name is the one the accounts set.
    assert AUDIT_WRITE_FAILING._name == AUDIT_WRITE_FAILING_METRIC


def test_audit_write_failing_fires_after_its_for_and_resolves():
    from mesh.router.accounts import AUDIT_WRITE_FAILING

    [rule] = [r for r in DEFAULT_RULES if r.name == "audit_write_failing"]
    clock = Clock()
    alerts = Alerts([rule], Observations(clock=clock), clock=clock)
    AUDIT_WRITE_FAILING.set(0)
    try:
        assert alerts.evaluate() == [] and alerts.firing() == []
        AUDIT_WRITE_FAILING.set(1)  # as Accounts does when a write fails
        assert alerts.evaluate() == []  # pending: not yet for `for_seconds`
        clock.t += rule.for_seconds + 1
        [firing] = alerts.evaluate()
        assert (firing["status"], firing["labels"]["severity"]) == ("firing", "critical")
        AUDIT_WRITE_FAILING.set(0)  # writes recovered
        [resolved] = alerts.evaluate()
        assert resolved["status"] == "resolved" and alerts.firing() == []
    finally:
        AUDIT_WRITE_FAILING.set(0)
