"""The console's data (GetConsoleSummary): an admin key sees every tenant, a tenant key only
its own. Limited per key (CallLimiter), at most MAX_POINTS buckets per series
(build_summary), and built in a thread: its cost grows with the records, and the event loop
serves every other request and the health probes."""

from __future__ import annotations

import asyncio
import json
import time

from mesh import metrics
from mesh.alerts import Alerts
from mesh.console.data import build_summary
from mesh.errors import RateLimited
from mesh.observations import Observations
from mesh.pb import inference_pb2
from mesh.router.access import Principal
from mesh.router.config import RouterConfig
from mesh.router.ratelimit import CallLimiter


def summary_json(records, alerts, tenant: str | None, **kw) -> str:
    """build_summary + json.dumps: run in a thread (proportional to the records)."""
    return json.dumps(build_summary(records, alerts, tenant, **kw))


class ConsoleSummaries:
    def __init__(
        self, config: RouterConfig, observations: Observations, alerts: Alerts | None
    ) -> None:
        self._observations, self._alerts = observations, alerts
        self._calls = CallLimiter(
            config.console_calls_per_window, config.console_window_s, time.monotonic
        )

    async def summary(
        self, principal: Principal, request: inference_pb2.ConsoleSummaryRequest
    ) -> inference_pb2.ConsoleSummary:
        try:
            self._calls.acquire(principal.key_id, "the console summary")
        except RateLimited:
            metrics.observe_ratelimit_refusal(principal.tenant, "console")
            raise
        text = await asyncio.to_thread(
            summary_json,
            self._observations.records(),  # a copy, taken on the loop
            self._alerts.firing() if self._alerts is not None else [],
            None if principal.admin else principal.tenant,
            window_s=min(max(request.window_seconds or 3600, 60), 7 * 86400),
            bucket_s=min(max(request.bucket_seconds or 60, 1), 3600),
        )
        return inference_pb2.ConsoleSummary(json=text)
