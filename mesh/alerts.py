"""Alerting runtime: evaluates the rules every few seconds, keeps firing alerts and a bounded
history for the console, and POSTs each firing / resolved event to a webhook.

    obs = Observations()                       # the router feeds it per request
    alerts = Alerts.from_config(config, obs)   # rules from [[alerts]], webhook from env
    alerts.start()                             # asyncio task; `await alerts.stop()` at exit

Webhook: `LLMAAS_ALERT_WEBHOOK` (or `[alerting] webhook`), payload in Alertmanager's
webhook format (version 4), so existing receivers (chat bridges, incident tools) accept it.
Delivery is sequential (events stay in order), with bounded retries; a dead webhook delays
the next evaluation but never loses state: firing()/history() stay right.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from mesh.aio import cancel_and_wait
from mesh.alert_rules import AlertRule, Labels, evaluate, load_rules
from mesh.config import env
from mesh.observations import Observations

log = logging.getLogger(__name__)

Event = dict[str, Any]
Notifier = Callable[[Event], Awaitable[None]]


@dataclass(slots=True)
class _Active:
    pending_since: float
    value: float
    firing_since: float | None = None


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


class Alerts:
    def __init__(
        self,
        rules: list[AlertRule],
        observations: Observations,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
        interval_s: float = 5.0,
        history_size: int = 500,
    ) -> None:
        self.rules = list(rules)
        self.observations = observations
        self.notifier = notifier
        self.clock = clock
        self.interval_s = interval_s
        self._active: dict[tuple[str, Labels], _Active] = {}
        self._firing: dict[tuple[str, Labels], Event] = {}
        self._history: deque[Event] = deque(maxlen=history_size)
        self._task: asyncio.Task | None = None

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        observations: Observations,
        environ: dict[str, str] | None = None,
        **kwargs,
    ) -> Alerts:
        environ = os.environ if environ is None else environ
        section = config.get("alerting", {})
        url = environ.get("LLMAAS_ALERT_WEBHOOK") or section.get("webhook")
        interval = env(
            "LLMAAS_ALERT_INTERVAL_S", float, float(section.get("interval_seconds", 5.0)), environ
        )
        notifier = WebhookNotifier(url) if url else None
        return cls(
            load_rules(config), observations, notifier=notifier, interval_s=interval, **kwargs
        )

    # --- evaluation -----------------------------------------------------------------------
    def evaluate(self, now: float | None = None) -> list[Event]:
        """Updates the state from the observations; returns the new firing/resolved events."""
        now = self.clock() if now is None else now
        events: list[Event] = []
        for rule in self.rules:
            try:
                values = evaluate(rule, self.observations, now)
            except Exception:  # noqa: BLE001 - one broken rule must not stop the others
                log.exception("alert rule %s failed", rule.name)
                continue
            events.extend(self._update_rule(rule, values, now))
        self._history.extend(events)
        return events

    def _update_rule(self, rule: AlertRule, values: dict[Labels, float], now: float) -> list[Event]:
        events = []
        breaching = {g: v for g, v in values.items() if v > rule.threshold}
        for group, value in breaching.items():
            key = (rule.name, group)
            state = self._active.setdefault(key, _Active(pending_since=now, value=value))
            state.value = value
            if state.firing_since is None and now - state.pending_since >= rule.for_seconds:
                state.firing_since = now
                events.append(self._event("firing", rule, group, state, now))
                self._firing[key] = events[-1]
            elif key in self._firing:
                self._firing[key]["value"] = value  # live value for the console
        for key in [k for k in self._active if k[0] == rule.name and k[1] not in breaching]:
            state = self._active.pop(key)
            if self._firing.pop(key, None) is not None:
                events.append(self._event("resolved", rule, key[1], state, now))
        return events

    @staticmethod
    def _event(status: str, rule: AlertRule, group: Labels, state: _Active, now: float) -> Event:
        labels = {"alertname": rule.name, "severity": rule.severity, **dict(group)}
        where = ", ".join(f"{k}={v}" for k, v in group) or "mesh"
        return {
            "status": status,
            "alertname": rule.name,
            "expr": rule.expr,
            "labels": labels,
            "value": state.value,
            "threshold": rule.threshold,
            "summary": f"{rule.expr} {state.value:.4g} > {rule.threshold:g} ({where})",
            "starts_at": _iso(state.firing_since),
            "ends_at": _iso(now) if status == "resolved" else None,
            "fingerprint": hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16],
        }

    def firing(self) -> list[Event]:
        return list(self._firing.values())

    def history(self) -> list[Event]:
        """Firing and resolved events, newest first."""
        return list(reversed(self._history))

    # --- running --------------------------------------------------------------------------
    async def tick(self) -> list[Event]:
        events = self.evaluate()
        if self.notifier is not None:
            for event in events:
                try:
                    await self.notifier(event)
                except Exception:  # noqa: BLE001 - alerting must never crash its loop
                    log.exception("alert notification failed: %s", event["alertname"])
        return events

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.interval_s)

    def start(self) -> asyncio.Task:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="llmaas-alerts")
        return self._task

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if isinstance(self.notifier, WebhookNotifier):
            await self.notifier.aclose()


def alertmanager_payload(event: Event) -> dict[str, Any]:
    """An event in Alertmanager's webhook format (one alert per POST)."""
    alert = {
        "status": event["status"],
        "labels": event["labels"],
        "annotations": {
            "summary": event["summary"],
            "value": f"{event['value']:.6g}",
            "threshold": f"{event['threshold']:g}",
            "expr": event["expr"],
        },
        "startsAt": event["starts_at"],
        "endsAt": event["ends_at"] or "0001-01-01T00:00:00Z",
        "fingerprint": event["fingerprint"],
        "generatorURL": "",
    }
    return {
        "version": "4",
        "receiver": "llmaas",
        "status": event["status"],
        "groupKey": event["alertname"],
        "groupLabels": {"alertname": event["alertname"]},
        "commonLabels": event["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "",
        "truncatedAlerts": 0,
        "alerts": [alert],
    }


class WebhookNotifier:
    """POSTs events as JSON; retries network errors, 429 and 5xx with bounded backoff."""

    def __init__(
        self, url: str, *, retries: int = 3, backoff_s: float = 0.5, timeout_s: float = 5.0
    ) -> None:
        self.url, self.retries, self.backoff_s = url, retries, backoff_s
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def __call__(self, event: Event) -> None:
        payload = alertmanager_payload(event)
        for attempt in range(self.retries + 1):
            try:
                resp = await self._client.post(self.url, json=payload)
                if resp.status_code < 500 and resp.status_code != 429:
                    if resp.status_code >= 400:
                        log.warning(
                            "alert webhook refused %s: %s", event["alertname"], resp.status_code
                        )
                    return
                reason = f"HTTP {resp.status_code}"
            except httpx.HTTPError as exc:
                reason = repr(exc)
            if attempt < self.retries:
                await asyncio.sleep(min(self.backoff_s * 2**attempt, 10.0))
        log.error(
            "alert webhook gave up on %s after %d attempts: %s",
            event["alertname"],
            self.retries + 1,
            reason,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
