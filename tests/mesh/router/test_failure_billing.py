"""A request that fails after a worker took it is billed what the worker did (issue #14,
point 14): tokens streamed before a worker died mid-stream, and the prompt of a request
that failed after dispatch before its first token; audited with the error either way.
Nothing is billed where no worker computed anything (every try unreachable, a 4xx refusal)."""

from __future__ import annotations

import grpc
import pytest
from router_fakes import FakeWorker, chat

from mesh.errors import from_rpc_error
from mesh.pb import common_pb2, worker_pb2
from mesh.router.accounts import Accounts

pytestmark = pytest.mark.timeout(30)


class EarlyUsageWorker(FakeWorker):
    """Says the prompt's tokens with its first token, then crashes (as a worker might)."""

    async def Generate(self, request, context):
        self.calls.append(request)
        usage = common_pb2.Usage(prompt_tokens=37, system_tokens=5)
        yield worker_pb2.GenerateResponse(text="Hel", num_tokens=1, usage=usage)
        yield worker_pb2.GenerateResponse(text="lo", num_tokens=1)
        await context.abort(grpc.StatusCode.UNAVAILABLE, "fake crash")


async def _fail(mesh) -> tuple[list[str], object]:
    seen: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for chunk in mesh.stub.ChatCompletion(
            chat(text="tell me a story " * 20), metadata=mesh.md()
        ):
            seen.append(chunk.text)
    return seen, from_rpc_error(info.value)


def _billed(record) -> bool:
    """Whether the real accounts would write a usage row for this record."""
    tenant = record.principal.tenant
    return Accounts._usage_of(record, 0.0, tenant, record.key_id) is not None


async def test_a_stream_cut_mid_answer_is_billed_what_it_streamed(make_mesh):
    worker = FakeWorker("w1", ("chat:1m",))
    worker.fail_after_first = True  # one token, then the worker dies
    mesh = await make_mesh([worker])
    seen, err = await _fail(mesh)
    assert seen == ["Hel"] and (err.http_status, err.code) == (503, "worker_failed")
    record = mesh.access.records[-1]
    assert (record.outcome, record.status) == ("error", 503)
    assert "worker_failed" in record.reason
    # The router's estimate of the prompt (~4 characters a token), one output token.
    assert record.input_tokens == len("tell me a story " * 20) // 4 + 1
    assert record.output_tokens == 1 and record.cost_eur > 0 and _billed(record)


async def test_the_prompt_a_worker_reported_early_is_what_is_billed(make_mesh):
    mesh = await make_mesh([EarlyUsageWorker("w1", ("chat:1m",))])
    seen, err = await _fail(mesh)
    assert seen == ["Hel", "lo"] and err.http_status == 503
    record = mesh.access.records[-1]
    assert (record.input_tokens, record.output_tokens, record.system_tokens) == (37, 2, 5)
    assert _billed(record)


async def test_a_failure_after_dispatch_before_the_first_token_bills_the_prompt(make_mesh):
    worker = FakeWorker("w1", ("chat:1m",))
    worker.fail_before_first = grpc.StatusCode.INTERNAL  # not retried: the worker had it
    mesh = await make_mesh([worker])
    seen, err = await _fail(mesh)
    assert seen == [] and err.http_status >= 500
    record = mesh.access.records[-1]
    assert record.outcome == "error" and record.status == err.http_status
    assert record.input_tokens > 0 and record.output_tokens == 0 and _billed(record)


@pytest.mark.parametrize(
    ("status", "http"),
    [(grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.INVALID_ARGUMENT, 400)],
)
async def test_nothing_is_billed_when_no_worker_computed_anything(make_mesh, status, http):
    worker = FakeWorker("w1", ("chat:1m",))
    worker.fail_before_first = status  # unreachable (every try), or refused by the worker
    mesh = await make_mesh([worker])
    seen, err = await _fail(mesh)
    assert seen == [] and err.http_status == http
    record = mesh.access.records[-1]
    assert record.status == http
    assert (record.input_tokens, record.output_tokens, record.cost_eur) == (0, 0, 0)
    assert not _billed(record)
