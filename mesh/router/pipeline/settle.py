"""Last step: settle (usage → tokens, cost, energy), then record (usage, audit, metrics).

A request is recorded whatever happens (`tracked`), refusals and cancellations included; the
model reads and the console record their refusals only (`refusals_recorded`). Usage and audit
are written exactly once (`finish`), before the end of a successful answer leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from mesh import metrics
from mesh.errors import MeshError, Unavailable
from mesh.observations import Observations, RequestSample
from mesh.pb import common_pb2
from mesh.pricing import Prices
from mesh.router.access import AccessControl
from mesh.router.accounting import TokenCounts, cost_eur, energy_kwh, format_decimal
from mesh.router.accounts import AUDIT_UNAVAILABLE
from mesh.router.content import ContentRecorder
from mesh.router.pipeline.call import Call

log = logging.getLogger(__name__)


def settle(call: Call, usage: common_pb2.Usage | None, prices: Prices) -> None:
    """Token counts, cost and energy; without usage (cancelled, or failed before the
    worker's final message) from what was streamed: the prompt as the worker reported it,
    else the router's estimate."""
    if usage is None:
        usage = common_pb2.Usage(
            prompt_tokens=call.reported_prompt or call.prompt_estimate,
            completion_tokens=call.num_streamed,
            system_tokens=call.reported_system if call.reported_prompt else 0,
        )
    call.tokens = TokenCounts(usage.prompt_tokens, usage.completion_tokens, usage.reasoning_tokens)
    call.system_tokens = usage.system_tokens
    call.cost = cost_eur(call.tokens, prices)
    kwh = call.entry.energy_kwh_per_mtok if call.entry else None
    call.energy = energy_kwh(call.tokens, kwh)


def cost_pb(call: Call) -> common_pb2.Cost:
    return common_pb2.Cost(
        cost_eur=format_decimal(call.cost), energy_kwh=format_decimal(call.energy)
    )


def computed_before(call: Call, err: MeshError) -> bool:
    """Whether a worker computed something for a request that failed with `err`: tokens were
    streamed, or it was dispatched and failed with a server error other than "no worker
    could take it" (every try unreachable). A worker's 4xx refusal (e.g. its own context
    check) comes before its sequence exists: nothing computed, nothing billed."""
    if call.settled or call.recorded:
        return False
    if call.num_streamed:
        return True
    return call.dispatched and err.http_status >= 500 and err.code != "model_unavailable"


class Settle:
    """Settles and records calls: the access control's usage/audit, metrics, content log."""

    def __init__(
        self,
        access: AccessControl,
        prices: Callable[[Call], Prices],
        is_real_model: Callable[[str], bool],
        observations: Observations,
        content_log: ContentRecorder | None,
    ) -> None:
        self._access, self._prices, self._is_real_model = access, prices, is_real_model
        self._observations, self._content_log = observations, content_log

    def settle(self, call: Call, usage: common_pb2.Usage | None) -> None:
        settle(call, usage, self._prices(call))

    @contextlib.asynccontextmanager
    async def tracked(self, call: Call) -> AsyncIterator[Call]:
        """For generation: every outcome recorded, what a worker computed billed."""
        try:
            yield call
        except MeshError as err:
            call.outcome = (
                "refused" if call.num_streamed == 0 and err.http_status < 500 else "error"
            )
            call.status, call.reason = err.http_status, f"{err.code}: {err.message}"
            # Rate-limit facts go out with the error too, so the edge can copy them.
            err.headers = {**call.headers, **err.headers}
            if computed_before(call, err):
                # A worker computed the prompt (and maybe streamed tokens) before the failure:
                # billed what it did, audited with the error.
                self.settle(call, None)
            raise
        except (asyncio.CancelledError, GeneratorExit):
            # A cancel after the final chunk (the edge closing the call) changes nothing.
            if not call.settled:
                call.outcome, call.status, call.reason = "cancelled", 499, "client cancelled"
                if call.num_streamed or call.dispatched:
                    # A worker had the request: its prompt was (being) computed, so it is
                    # billed, with what was streamed, even before the first token.
                    self.settle(call, None)
            raise
        finally:
            await self.finish(call)

    @contextlib.asynccontextmanager
    async def refusals_recorded(self, call: Call) -> AsyncIterator[Call]:
        """For reads (models, console): a refusal is audited; a success is not recorded."""
        try:
            yield call
        except MeshError as err:
            call.outcome = "refused" if err.http_status < 500 else "error"
            call.status, call.reason = err.http_status, f"{err.code}: {err.message}"
            try:
                await self._access.record(call.to_record())
            except Exception:  # noqa: BLE001 - the refusal itself goes out regardless
                log.error("could not record the refusal %s", call.request_id, exc_info=True)
            raise

    async def finish(self, call: Call, *, strict: bool = False) -> None:
        """Releases the admission and the budget hold, writes usage and audit (once).

        A failed write is logged at ERROR (the accounts then answer 503 to later requests,
        see `ensure_recording`); with `strict` (an answer not yet complete) it also ends this
        request with 503, so nothing is served unbilled or unaudited.
        """
        if call.recorded:
            return
        call.recorded = True
        record = call.to_record()
        try:  # first, without awaiting: a cancellation below must not lose the metrics
            self._observe(call)
        except Exception:  # noqa: BLE001 - metrics must never change the answer
            log.exception("could not observe request %s", call.request_id)
        failed = False
        try:
            if call.admission is not None and call.principal is not None:
                await self._access.release(call.principal, call.admission, record)
            await self._access.record(record)
        except Exception:  # noqa: BLE001 - reported below, never swallowed silently
            failed = True
            log.error(
                "could not record usage/audit of request %s (tenant %s, %s, %s tokens in, "
                "%s out): %s",
                call.request_id,
                call.principal.tenant if call.principal else "-",
                record.outcome,
                record.input_tokens,
                record.output_tokens,
                "answer refused (503)" if strict else "answer already decided",
                exc_info=True,
            )
        finally:
            if call.hold is not None and self._access.budget is not None:
                self._access.budget.release(call.hold)  # the real cost is in the spend now
        await self._log_content(call)
        self._observe_budget(call)  # after record(): the spend includes this request
        if failed and strict:
            raise Unavailable(
                "The request could not be recorded for billing and audit, so its answer was "
                "withheld. Retry in a few seconds.",
                code=AUDIT_UNAVAILABLE,
                retry_after=5,
            )

    async def _log_content(self, call: Call) -> None:
        if call.answer_parts is None or call.principal is None:
            return
        try:  # encrypted at rest (AES-256-GCM, the tenant's key): see mesh.router.content
            await self._content_log.record(
                call.principal.tenant, call.request_id, call.prompt_text, "".join(call.answer_parts)
            )
        except Exception:  # noqa: BLE001
            log.exception("could not log the content of request %s", call.request_id)

    def _observe(self, call: Call) -> None:
        """Prometheus metrics and the console/alert observations of one finished request."""
        # Label values stay bounded: a model only once resolved, a tenant only once authenticated.
        real_model = call.entry is not None or self._is_real_model(call.model)
        model = call.model if real_model else "unknown"
        tenant = call.principal.tenant if call.principal is not None else "unauthenticated"
        status = str(call.status)
        if call.clock is not None:
            duration = call.clock.finish(status)
            ttft = call.clock.ttft_s
        else:
            duration, ttft = time.perf_counter() - call.perf_start, None
            metrics.observe_request(model, tenant, status, duration)
        t, system = call.tokens, call.system_tokens
        metrics.observe_tokens(
            model,
            tenant,
            input=max(0, t.prompt - system),
            output=max(0, t.completion - t.reasoning),
            reasoning=t.reasoning,
            system=system,
        )
        metrics.observe_cost(model, tenant, call.cost, call.energy)
        self._observations.record_request(
            RequestSample(
                t=time.time(),
                model=model,
                tenant=tenant,
                status=status,
                ttft_s=ttft,
                duration_s=duration,
                input_tokens=t.prompt,
                output_tokens=t.completion,
                reasoning_tokens=t.reasoning,
                cost_eur=float(call.cost),
                energy_kwh=float(call.energy),
                request_id=call.request_id,
            )
        )

    def _observe_budget(self, call: Call) -> None:
        """The tenant's month-to-date spend over its tier budget, where the accounts know it."""
        budget = self._access.budget
        if call.principal is None or budget is None or not call.cost:
            return
        try:
            tier = self._access.tier(call.principal.tier)
            limit = tier.monthly_budget_eur if tier is not None else None
            if limit:
                ratio = float(budget.spent(call.principal.tenant) / limit)
                metrics.observe_budget(call.principal.tenant, ratio)
                self._observations.record_budget(call.principal.tenant, ratio)
        except Exception:  # noqa: BLE001 - metrics must never change the answer
            log.exception("could not observe the budget of %s", call.principal.tenant)
