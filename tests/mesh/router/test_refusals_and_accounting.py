"""Issue #14 on the router's pipeline: every refusal recorded (model reads and the console too),
over-long model ids, the console summary's bounds, what a cancelled or unbounded request
counts, budget held for requests in flight, and recording failures that fail closed."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from decimal import Decimal

import grpc
import pytest
from router_fakes import FakeWorker, RecordingAccess, chat

from mesh.errors import from_rpc_error
from mesh.pb import common_pb2, inference_pb2
from mesh.router import console_service
from mesh.router.access import Admission, Principal
from mesh.router.ratelimit import Budget
from mesh.router.tenants import DEFAULT_TIERS, Tier

pytestmark = pytest.mark.timeout(30)

LONG_MODEL = "m" * 1_000_000


async def _error(call):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        if hasattr(call, "__aiter__"):  # a stream
            [c async for c in call]
        else:
            await call
    return from_rpc_error(info.value)


async def _until(predicate, what: str) -> None:
    for _ in range(200):  # bounded: the router records as soon as it sees the event
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


class HangingWorker(FakeWorker):
    """Takes the request (the prompt is being computed) and sends nothing until cancelled."""

    async def Generate(self, request, context):
        self.calls.append(request)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.num_cancelled += 1
            raise
        yield  # a streaming handler (never reached)


# -- refusals are recorded, client strings clipped ------------------------------------------


@pytest.mark.parametrize("key", ["sk-test", "sk-wrong"])
async def test_an_overlong_model_id_is_refused_first_and_never_echoed(make_mesh, key):
    mesh = await make_mesh()
    err = await _error(mesh.stub.ChatCompletion(chat(model=LONG_MODEL), metadata=mesh.md(key)))
    assert (err.http_status, err.code, err.param) == (400, "invalid_model", "model")
    assert "1000000 characters" in err.message and "mmmmmmmmmm" not in err.message
    record = mesh.access.records[-1]
    assert (record.outcome, record.status, record.principal) == ("refused", 400, None)
    assert len(record.model) < 100 and len(record.reason) < 300
    assert mesh.filter.calls == [] and mesh.workers[0].calls == []


async def test_a_401_records_the_clients_model_clipped(make_mesh):
    mesh = await make_mesh()
    model = "x" * 200  # within the id limit: recorded as sent
    err = await _error(mesh.stub.ChatCompletion(chat(model=model), metadata=mesh.md("sk-bad")))
    assert err.http_status == 401
    assert mesh.access.records[-1].model == model


@pytest.mark.parametrize(
    ("rpc", "request_", "action"),
    [
        ("ListModels", inference_pb2.ListModelsRequest(), "models.list"),
        ("GetModel", inference_pb2.GetModelRequest(id="chat:1m"), "models.get"),
        ("GetConsoleSummary", inference_pb2.ConsoleSummaryRequest(), "console.summary"),
    ],
)
async def test_refused_reads_are_recorded(make_mesh, rpc, request_, action):
    mesh = await make_mesh()
    err = await _error(getattr(mesh.stub, rpc)(request_, metadata=mesh.md("sk-bad")))
    assert err.http_status == 401
    record = mesh.access.records[-1]
    assert (record.action, record.outcome, record.status) == (action, "refused", 401)
    # A successful read is not recorded (reads are not billed).
    await getattr(mesh.stub, rpc)(request_, metadata=mesh.md())
    assert len(mesh.access.records) == 1


async def test_get_model_not_found_and_overlong_are_recorded(make_mesh):
    mesh = await make_mesh()
    err = await _error(
        mesh.stub.GetModel(inference_pb2.GetModelRequest(id="nope:1m"), metadata=mesh.md())
    )
    assert err.http_status == 404
    err = await _error(
        mesh.stub.GetModel(inference_pb2.GetModelRequest(id=LONG_MODEL), metadata=mesh.md())
    )
    assert (err.http_status, err.code) == (400, "invalid_model")
    first, second = mesh.access.records
    assert (first.model, first.status, first.principal.tenant) == ("nope:1m", 404, "acme")
    assert second.status == 400 and len(second.model) < 100


# -- the console summary ----------------------------------------------------------------------


async def test_console_summary_points_are_bounded(make_mesh):
    mesh = await make_mesh()
    request = inference_pb2.ConsoleSummaryRequest(window_seconds=7 * 86400, bucket_seconds=1)
    reply = await mesh.stub.GetConsoleSummary(request, metadata=mesh.md())
    summary = json.loads(reply.json)
    assert len(summary["series"]["t"]) <= 1440
    assert (summary["bucket_seconds"], summary["requested_bucket_seconds"]) == (420, 1)


async def test_console_summary_is_limited_per_key(make_mesh):
    mesh = await make_mesh(console_calls_per_window=3, console_window_s=3600)
    request = inference_pb2.ConsoleSummaryRequest()
    for _ in range(3):
        await mesh.stub.GetConsoleSummary(request, metadata=mesh.md())
    err = await _error(mesh.stub.GetConsoleSummary(request, metadata=mesh.md()))
    assert (err.http_status, err.code) == (429, "rate_limit_exceeded")
    assert err.retry_after and err.retry_after > 0
    record = mesh.access.records[-1]
    assert (record.action, record.status) == ("console.summary", 429)


async def test_console_summary_is_built_off_the_event_loop(make_mesh, monkeypatch):
    threads = []
    real = console_service.summary_json

    def spy(*args, **kw):
        threads.append(threading.current_thread())
        return real(*args, **kw)

    monkeypatch.setattr(console_service, "summary_json", spy)
    mesh = await make_mesh()
    await mesh.stub.GetConsoleSummary(inference_pb2.ConsoleSummaryRequest(), metadata=mesh.md())
    assert threads and threads[0] is not threading.current_thread()


# -- accounting -------------------------------------------------------------------------------


async def test_a_request_cancelled_before_its_first_token_is_billed_its_prompt(make_mesh):
    worker = HangingWorker("w1", ("chat:1m",))
    mesh = await make_mesh([worker])
    call = mesh.stub.ChatCompletion(chat(text="tell me a story " * 20), metadata=mesh.md())
    reader = asyncio.ensure_future(call.read())
    await _until(lambda: worker.calls, "the worker got the request")
    call.cancel()
    await _until(lambda: mesh.access.records, "the cancelled request was recorded")
    reader.cancel()
    record = mesh.access.records[-1]
    assert (record.outcome, record.status) == ("cancelled", 499)
    assert record.input_tokens > 0 and record.output_tokens == 0 and record.cost_eur > 0


class EstimateAccess(RecordingAccess):
    """Captures what the router asks the limiter for; a tier with a TPM limit when set."""

    def __init__(self, tier: Tier | None = None) -> None:
        super().__init__()
        self.estimates: list[int] = []
        self._tier = tier

    async def admit(self, principal: Principal, model: str, estimated_tokens: int) -> Admission:
        self.estimates.append(estimated_tokens)
        return await super().admit(principal, model, estimated_tokens)

    def tier(self, name: str) -> Tier:
        return self._tier or DEFAULT_TIERS["standard"]


def _unbounded(text: str = "hi") -> inference_pb2.ChatCompletionRequest:
    request = chat(text=text)
    request.sampling.max_tokens = 0
    return request


async def test_without_max_tokens_the_estimate_is_the_window_left(make_mesh):
    worker = FakeWorker("w1", ("chat:1m",))
    worker.context_length = 2048
    access = EstimateAccess()
    mesh = await make_mesh([worker], access=access)
    [c async for c in mesh.stub.ChatCompletion(_unbounded(), metadata=mesh.md())]
    [c async for c in mesh.stub.ChatCompletion(chat(), metadata=mesh.md())]  # max_tokens=8
    assert access.estimates == [2048, 1 + 8]


async def test_without_max_tokens_the_estimate_is_capped_by_the_tiers_tpm(make_mesh):
    worker = FakeWorker("w1", ("chat:1m",))
    worker.context_length = 2048
    tier = Tier("tiny", 100, 500, 4, Decimal(0), 1)
    access = EstimateAccess(tier)
    mesh = await make_mesh([worker], access=access)
    [c async for c in mesh.stub.ChatCompletion(_unbounded(), metadata=mesh.md())]
    assert access.estimates == [500]


class BudgetAccess(RecordingAccess):
    """A monthly budget checked at admission, as Accounts does."""

    def __init__(self, budget_eur: str) -> None:
        super().__init__()
        self.budget = Budget(lambda: 1_767_225_600.0)
        self._tier = Tier("b", 0, 0, 0, Decimal(budget_eur), 1)

    def tier(self, name: str) -> Tier:
        return self._tier

    async def admit(self, principal: Principal, model: str, estimated_tokens: int) -> Admission:
        self.budget.check(principal.tenant, self._tier)
        return Admission(estimated_tokens=estimated_tokens)


async def test_budget_is_held_for_requests_in_flight(make_mesh):
    worker = HangingWorker("w1", ("chat:1m",))
    access = BudgetAccess("0.00001")  # less than one in-flight request's estimated cost
    mesh = await make_mesh([worker], access=access)
    first = mesh.stub.ChatCompletion(chat(), metadata=mesh.md())
    reader = asyncio.ensure_future(first.read())
    await _until(lambda: worker.calls, "the first request is in flight")
    assert access.budget.held("acme") > 0
    err = await _error(mesh.stub.ChatCompletion(chat(), metadata=mesh.md()))
    assert (err.http_status, err.code) == (429, "insufficient_quota")
    assert "in flight" in err.message
    first.cancel()
    await _until(lambda: len(access.records) == 2, "the first request was recorded")
    reader.cancel()
    assert access.budget.held("acme") == 0


# -- recording failures fail closed -------------------------------------------------------------


async def test_no_request_is_admitted_while_recording_fails(make_mesh):
    access = EstimateAccess()
    access.recording_broken = True
    mesh = await make_mesh(access=access)
    err = await _error(mesh.stub.ChatCompletion(chat(), metadata=mesh.md()))
    assert err.http_status == 503
    assert access.estimates == [] and mesh.filter.calls == [] and mesh.workers[0].calls == []


async def test_a_failed_record_withholds_the_end_of_the_answer(make_mesh, caplog):
    mesh = await make_mesh()
    mesh.access.record_fails = True
    with caplog.at_level(logging.ERROR, logger="mesh.router.pipeline.settle"):
        call = mesh.stub.ChatCompletion(chat(), metadata=mesh.md())
        seen = []
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for chunk in call:
                seen.append(chunk)
    err = from_rpc_error(info.value)
    assert (err.http_status, err.code) == (503, "audit_unavailable")
    assert all(c.finish_reason == common_pb2.FINISH_REASON_UNSPECIFIED for c in seen)
    assert any("could not record" in r.getMessage() for r in caplog.records)
