"""Unit tests of the request pipeline's first steps (mesh/router/pipeline/), one at a time:
call → authenticate → resolve → admit → screen. No servers: fakes from pipeline_fakes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import grpc
import pytest
from pipeline_fakes import PRINCIPAL, FakeContext, FakePool, TieredAccess, catalog

from mesh.errors import (
    InvalidRequest,
    ModelRetired,
    NotFound,
    PermissionDenied,
    PromptRejected,
    QuotaExceeded,
    RateLimited,
    Unauthenticated,
    Unavailable,
)
from mesh.pb import common_pb2, filter_pb2
from mesh.pricing import Prices
from mesh.router.access import Principal, StaticKeys
from mesh.router.config import RouterConfig
from mesh.router.pipeline.admit import (
    DEFAULT_OUTPUT_ESTIMATE,
    Admit,
    fair_weight,
    output_estimate,
    refusal_reason,
)
from mesh.router.pipeline.authenticate import authenticate
from mesh.router.pipeline.call import (
    MAX_MODEL_ID_CHARS,
    Call,
    begin,
    check_model_id,
    initial_metadata,
    timeout,
)
from mesh.router.pipeline.resolve import Models
from mesh.router.pipeline.screen import Screen, describe
from mesh.router.tenants import DEFAULT_TIERS

TODAY = date(2026, 1, 1)


def _call(model: str = "chat:1m", **kw) -> Call:
    return Call(action="chat.completions", model=model, request_id="r1", **kw)


# -- call -------------------------------------------------------------------------------------


def test_begin_keeps_a_sane_request_id_and_replaces_a_bad_one():
    assert begin(FakeContext((("X-Request-Id", "abc"),)), "a", "m").request_id == "abc"
    assert len(begin(FakeContext((("x-request-id", "a\nb"),)), "a", "m").request_id) == 32
    assert len(begin(FakeContext((("x-request-id", "x" * 129),)), "a", "m").request_id) == 32


def test_an_over_long_model_id_is_clipped_at_once_and_refused_by_check_model_id():
    call = begin(FakeContext(), "a", "m" * (MAX_MODEL_ID_CHARS + 1))
    assert call.model_chars == MAX_MODEL_ID_CHARS + 1 and len(call.model) < 100
    with pytest.raises(InvalidRequest) as info:
        check_model_id(call)
    assert info.value.code == "invalid_model"
    check_model_id(begin(FakeContext(), "a", "m" * MAX_MODEL_ID_CHARS))  # at the limit: fine


def test_timeout_is_the_client_deadline_capped_by_the_limit():
    assert timeout(FakeContext(), 30.0) == 30.0
    assert timeout(FakeContext(remaining=2.0), 30.0) == 2.0
    assert timeout(FakeContext(remaining=-1.0), 30.0) == 0.001


def test_initial_metadata_leads_with_the_request_id():
    call = _call(headers={"x-ratelimit-limit-requests": "60"})
    assert initial_metadata(call) == (("x-request-id", "r1"), ("x-ratelimit-limit-requests", "60"))


# -- authenticate -----------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["", "Basic sk", "Bearer ", "Bearer    "])
async def test_authenticate_without_a_bearer_key_is_missing_api_key(header):
    with pytest.raises(Unauthenticated) as info:
        await authenticate(StaticKeys({"sk": "acme"}), FakeContext((("authorization", header),)))
    assert info.value.code == "missing_api_key"


async def test_authenticate_passes_the_stripped_key_to_the_access_control():
    ctx = FakeContext((("Authorization", "bearer  sk "),))
    assert (await authenticate(StaticKeys({"sk": "acme"}), ctx)).tenant == "acme"
    with pytest.raises(Unauthenticated):
        await authenticate(
            StaticKeys({"sk": "acme"}), FakeContext((("authorization", "Bearer x"),))
        )


# -- resolve ----------------------------------------------------------------------------------


def _models(served: tuple[str, ...] = ("chat:1m",), **infos: common_pb2.ModelInfo) -> Models:
    pool = FakePool(
        infos={m: common_pb2.ModelInfo(id=m, kind="chat") for m in served} | infos,
        served=set(served) | set(infos),
    )
    return Models(pool, catalog(), lambda: TODAY)


def test_resolve_sets_the_entry_and_served_name():
    call = _call()
    _models().resolve(call, "chat")
    assert call.entry is not None and call.served_name == "chat:1m"


def test_resolve_refuses_unknown_retired_and_wrong_kind():
    with pytest.raises(NotFound):
        _models().resolve(_call("nope:1m"), "chat")
    with pytest.raises(ModelRetired):
        _models().resolve(_call("old:1m"), "chat")
    with pytest.raises(InvalidRequest) as info:
        _models().resolve(_call("emb:1m"), "chat")
    assert info.value.code == "model_not_supported"


def test_resolve_serves_a_model_only_workers_announce():
    infos = {"extra:1m": common_pb2.ModelInfo(id="extra:1m", kind="embedding")}
    call = _call("extra:1m")
    _models(**infos).resolve(call, "embedding")
    assert call.entry is None and call.served_name == "extra:1m"


def test_authorise_refuses_a_model_outside_the_key():
    call = _call(principal=Principal(tenant="t", key_id="k", model_patterns=("big:*",)))
    with pytest.raises(PermissionDenied):
        Models.authorise(call)


def test_check_served_says_whether_the_model_is_down_or_not_served_here():
    models = _models(served=())
    with pytest.raises(Unavailable) as info:
        models.check_served(_call(served_name="chat:1m"))
    assert "not served on this platform" in info.value.message
    pool = FakePool(infos={"chat:1m": common_pb2.ModelInfo(id="chat:1m")})  # known, unhealthy
    with pytest.raises(Unavailable) as info:
        Models(pool, catalog(), lambda: TODAY).check_served(_call(served_name="chat:1m"))
    assert info.value.retry_after == 5


def test_window_is_the_workers_else_the_catalogs():
    infos = {"chat:1m": common_pb2.ModelInfo(id="chat:1m", context_length=1024)}
    models = _models(**infos)
    call = _call()
    models.resolve(call, "chat")
    assert models.window(call) == 1024
    call = _call()
    _models().resolve(call, "chat")
    assert _models().window(call) == 2048  # the catalog's


def test_visible_hides_retired_unless_asked_and_find_404s_the_rest():
    models = _models()
    ids = {m.id for m in models.visible(PRINCIPAL)}
    assert "chat:1m" in ids and "old:1m" not in ids
    assert models.find(PRINCIPAL, "old:1m").id == "old:1m"
    with pytest.raises(NotFound):
        models.find(Principal(tenant="t", key_id="k", model_patterns=("big:*",)), "chat:1m")


# -- admit ------------------------------------------------------------------------------------


def test_output_estimate():
    call = _call(prompt_estimate=100)
    tier = DEFAULT_TIERS["free"]  # 40,000 tokens per minute
    assert output_estimate(call, 8, 2048, tier) == 8
    assert output_estimate(call, 0, 0, tier) == DEFAULT_OUTPUT_ESTIMATE
    assert output_estimate(call, 0, 2048, None) == 1948
    assert output_estimate(call, 0, 100_000, tier) == 40_000 - 100


def test_refusal_reason_is_a_fixed_word():
    assert refusal_reason(QuotaExceeded("over budget")) == "budget"
    assert refusal_reason(RateLimited("Too many concurrent requests")) == "concurrency"
    assert refusal_reason(RateLimited("over your tokens per minute")) == "tpm"
    assert refusal_reason(RateLimited("something")) == "other"


def test_fair_weight_is_the_tiers_else_one():
    assert fair_weight(StaticKeys({}), PRINCIPAL) == 1.0
    assert fair_weight(TieredAccess(DEFAULT_TIERS["premium"]), PRINCIPAL) == 4.0


async def test_admit_counts_the_estimate_copies_headers_and_holds_the_cost():
    access = TieredAccess()
    admit = Admit(access, lambda call: 2048, lambda call: Prices(input=Decimal("1000000")))
    call = _call(principal=PRINCIPAL, prompt_estimate=10)
    await admit(call, 0)  # no max_tokens: the rest of the window
    assert access.admitted == [2048]
    assert call.headers == {"x-ratelimit-limit-requests": "60"}
    assert call.hold is not None and access.budget.held("acme") > 0


async def test_admit_without_budgets_holds_nothing_and_embeddings_count_no_output():
    access = StaticKeys({})
    call = _call(principal=PRINCIPAL, prompt_estimate=10)
    await Admit(access, lambda call: 2048, lambda call: Prices())(call, None)
    assert call.hold is None and call.admission.estimated_tokens == 10


# -- screen -----------------------------------------------------------------------------------


class _Filter:
    def __init__(self, verdict=None, error: bool = False):
        self.verdict, self.error, self.calls = verdict, error, []

    async def Check(self, request, timeout, metadata):
        self.calls.append(request)
        if self.error:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
            )
        return self.verdict


async def test_screen_skips_a_tenant_with_the_filter_off():
    fake = _Filter()
    call = _call(principal=PRINCIPAL)
    await Screen(fake, RouterConfig(filter_disabled_tenants=frozenset({"acme"})))(call, "p", "u")
    assert call.filter_verdict == "disabled" and fake.calls == []


async def test_screen_fails_closed_and_rejects_a_blocked_prompt():
    with pytest.raises(Unavailable) as info:
        await Screen(_Filter(error=True), RouterConfig())(_call(principal=PRINCIPAL), "p", "u")
    assert info.value.code == "filter_unavailable"
    reason = filter_pb2.Reason(layer="heuristics", rule="heuristics.repetition")
    blocked = filter_pb2.Verdict(allowed=False, score=0.9, reasons=[reason])
    call = _call(principal=PRINCIPAL)
    with pytest.raises(PromptRejected):
        await Screen(_Filter(blocked), RouterConfig())(call, "p", "u")
    assert call.filter_verdict == "heuristics/heuristics.repetition"


def test_describe():
    assert describe(filter_pb2.Verdict(allowed=True)) == "allowed"
    assert describe(filter_pb2.Verdict(allowed=False, score=0.5)) == "blocked (score 0.50)"
