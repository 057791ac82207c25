"""Unit tests of the pipeline's later steps (context length, settle) and of its order."""

from __future__ import annotations

import contextlib
from decimal import Decimal

import pytest
from pipeline_fakes import PRINCIPAL, FakeContext, FakePool, FakeWorkerHandle, TieredAccess

from mesh.errors import ContextLengthExceeded, InvalidRequest, MeshError, Unavailable
from mesh.observations import Observations
from mesh.pb import common_pb2, worker_pb2
from mesh.pricing import Prices
from mesh.prompt_bounds import fits
from mesh.router.config import RouterConfig
from mesh.router.pipeline.call import Call
from mesh.router.pipeline.context_length import ContextCheck, check_fits, could_overflow
from mesh.router.pipeline.run import Pipeline, Steps
from mesh.router.pipeline.settle import Settle, computed_before, settle

PRICES = Prices(input=Decimal("1000000"), output=Decimal("2000000"), reasoning=Decimal("0"))


def _call(**kw) -> Call:
    return Call(action="chat.completions", model="chat:1m", request_id="r1", **kw)


def _gen(text: str, max_tokens: int = 0) -> worker_pb2.GenerateRequest:
    return worker_pb2.GenerateRequest(
        prompt=text, sampling=common_pb2.SamplingParams(max_tokens=max_tokens)
    )


# -- context length: one rule ------------------------------------------------------------------


def test_fits_is_prompt_plus_max_tokens_within_the_window():
    assert fits(100, 92, 8) and not fits(100, 93, 8)
    assert fits(100, 99, 0) and not fits(100, 100, 0)  # max_tokens 0: one token to generate
    assert fits(100, 99, None) and not fits(100, 100, None)


def test_check_fits_names_the_parameter_to_change():
    with pytest.raises(ContextLengthExceeded) as info:
        check_fits(100, 50, 60, "your prompt has 50 tokens", "prompt", counted=True)
    assert info.value.param == "max_tokens" and "max_tokens asks for 60" in info.value.message
    with pytest.raises(ContextLengthExceeded) as info:
        check_fits(100, 120, 0, "your prompt has 120 tokens", "messages", counted=True)
    assert info.value.param == "messages" and "no room to generate" in info.value.message
    # The prompt alone fills the window: the counted message still names max_tokens, a floor's not.
    with pytest.raises(ContextLengthExceeded) as info:
        check_fits(100, 120, 8, "size", "prompt", counted=True)
    assert info.value.param == "prompt" and "max_tokens asks for 8" in info.value.message
    with pytest.raises(ContextLengthExceeded) as info:
        check_fits(100, 120, 8, "size", "prompt", counted=False)
    assert info.value.param == "prompt" and "no room to generate" in info.value.message


def test_could_overflow_is_bytes_plus_margin():
    assert not could_overflow(_gen("hi", 8), 1024, 8)
    assert could_overflow(_gen("x" * 1000, 8), 1024, 8)


def _check(pool: FakePool, window: int = 1024) -> ContextCheck:
    return ContextCheck(pool, lambda call: window, (128, 32), 30.0)


async def test_a_prompt_its_bytes_prove_too_long_is_refused_without_asking_a_worker():
    pool = FakePool()
    call = _call(served_name="chat:1m", principal=PRINCIPAL)
    text = " ".join(f"w{i}" for i in range(3000))  # ~6,000 runs: at least 180 tokens per 32
    with pytest.raises(ContextLengthExceeded) as info:
        await _check(pool, window=100)(call, _gen(text), FakeContext())
    assert "at least" in info.value.message
    assert pool.picks == []  # never tokenised
    assert call.prompt_estimate > 100  # the floor is what a cancel would bill


async def test_a_prompt_that_could_overflow_asks_a_worker_and_none_leaves_it_to_generate():
    pool = FakePool()
    call = _call(served_name="chat:1m", principal=PRINCIPAL)
    await _check(pool, window=1024)(call, _gen("x" * 1000, 8), FakeContext())
    assert pool.picks == ["chat:1m"]


def test_token_limits_are_the_loosest_said_and_a_zero_drops_the_bound():
    said = common_pb2.ModelInfo(id="m", max_token_bytes=81, max_token_runs=25)
    unsound = common_pb2.ModelInfo(id="m", max_token_bytes=0, max_token_runs=40)
    check = _check(FakePool(handles=[FakeWorkerHandle({"m": said})]))
    assert check.token_limits("m") == (81, 25)
    assert check.token_limits("other") == (128, 32)  # defaults
    both = FakePool(handles=[FakeWorkerHandle({"m": said}), FakeWorkerHandle({"m": unsound})])
    assert _check(both).token_limits("m") == (0, 40)


# -- settle -----------------------------------------------------------------------------------


def test_settle_with_usage_and_without_it():
    call = _call(prompt_estimate=7, num_streamed=3)
    settle(call, common_pb2.Usage(prompt_tokens=10, completion_tokens=2), PRICES)
    assert (call.tokens.prompt, call.tokens.completion, call.cost) == (10, 2, Decimal(14))
    settle(call, None, PRICES)  # cancelled: the estimate and what was streamed
    assert (call.tokens.prompt, call.tokens.completion) == (7, 3)
    call.reported_prompt, call.reported_system = 9, 4  # the worker said it early
    settle(call, None, PRICES)
    assert (call.tokens.prompt, call.system_tokens) == (9, 4)


def test_computed_before():
    assert computed_before(_call(num_streamed=1), Unavailable("x"))
    assert computed_before(_call(dispatched=True), Unavailable("x"))
    assert not computed_before(_call(dispatched=True), Unavailable("x", code="model_unavailable"))
    assert not computed_before(_call(dispatched=True), InvalidRequest("x"))
    assert not computed_before(_call(num_streamed=1, settled=True), Unavailable("x"))


def _settle(access: TieredAccess) -> Settle:
    return Settle(access, lambda call: PRICES, lambda model: True, Observations(), None)


async def test_finish_records_once_and_releases_the_hold():
    access = TieredAccess()
    call = _call(principal=PRINCIPAL, hold=access.budget.hold("acme", Decimal("5")))
    call.admission = object()  # type: ignore[assignment]
    steps = _settle(access)
    await steps.finish(call)
    await steps.finish(call)
    assert len(access.records) == 1 and len(access.released) == 1
    assert access.budget.held("acme") == 0


async def test_a_failed_record_is_a_503_only_when_strict():
    access = TieredAccess()
    access.record_fails = True
    await _settle(access).finish(_call(principal=PRINCIPAL))  # the answer was already decided
    with pytest.raises(Unavailable) as info:
        await _settle(access).finish(_call(principal=PRINCIPAL), strict=True)
    assert info.value.code == "audit_unavailable"


async def test_tracked_records_a_refusal_and_bills_what_a_worker_computed():
    access = TieredAccess()
    with contextlib.suppress(MeshError):
        async with _settle(access).tracked(_call(principal=PRINCIPAL, headers={"a": "1"})):
            raise InvalidRequest("no")
    with contextlib.suppress(MeshError):
        async with _settle(access).tracked(_call(principal=PRINCIPAL, num_streamed=2)):
            raise Unavailable("worker died")
    refused, failed = access.records
    assert (refused.outcome, refused.status, refused.output_tokens) == ("refused", 400, 0)
    assert (failed.outcome, failed.status, failed.output_tokens) == ("error", 503, 2)


# -- the order of the steps --------------------------------------------------------------------


class _Spy:
    """Every step of the pipeline, logging its name; `refuse` names the one that raises."""

    def __init__(self, log: list[str], refuse: str) -> None:
        self.log, self.refuse = log, refuse

    def step(self, name: str) -> None:
        self.log.append(name)
        if name == self.refuse:
            raise InvalidRequest(f"{name} refused")

    def resolve(self, call, kind):
        self.step("resolve")

    def authorise(self, call):
        self.step("authorise")

    def check_served(self, call):
        self.step("check_served")

    def window(self, call):
        return 0


class _SpyAccess(TieredAccess):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def authenticate(self, api_key):
        self.log.append("authenticate")
        return PRINCIPAL

    def ensure_recording(self):
        self.log.append("ensure_recording")


ORDER = [
    "authenticate",
    "ensure_recording",
    "resolve",
    "authorise",
    "check_served",
    "admit",
    "context_length",
    "screen",
]


@pytest.mark.parametrize("refuse", ORDER[2:])
async def test_the_steps_run_in_order_and_a_refusal_stops_the_rest(refuse):
    log: list[str] = []
    spy, access = _Spy(log, refuse), _SpyAccess(log)

    async def admit(call, max_tokens, choices=1):
        spy.step("admit")

    async def context(call, gen, ctx):
        spy.step("context_length")

    async def screen(call, prompt, user, gen=None):
        spy.step("screen")

    steps = Steps(spy, admit, context, screen, _settle(access))  # type: ignore[arg-type]
    pipeline = Pipeline(RouterConfig(), FakePool(), access, steps, None)  # type: ignore[arg-type]
    ctx = FakeContext((("authorization", "Bearer sk"),))
    with pytest.raises(InvalidRequest):
        async for _ in pipeline.complete("completions", _gen("hi", 8), "hi", "u", ctx):
            pass
    assert log == ORDER[: ORDER.index(refuse) + 1]
    assert [(r.outcome, r.status) for r in access.records] == [("refused", 400)]


async def test_an_over_long_model_id_is_refused_before_authentication():
    log: list[str] = []
    access = _SpyAccess(log)
    steps = Steps(_Spy(log, ""), None, None, None, _settle(access))  # type: ignore[arg-type]
    pipeline = Pipeline(RouterConfig(), FakePool(), access, steps, None)  # type: ignore[arg-type]
    gen = _gen("hi", 8)
    gen.model = "m" * 1000
    with pytest.raises(InvalidRequest) as info:
        async for _ in pipeline.complete("completions", gen, "hi", "u", FakeContext()):
            pass
    assert info.value.code == "invalid_model" and log == []
    assert access.records[0].model.endswith("(1000 chars)")
