"""The router relays the agent fields (#15): chat options and echo to the worker; choice
index, logprobs and tool calls back; with n > 1 the stream runs until every choice finished
and the usage of all choices (on the worker's last message) is billed once."""

from __future__ import annotations

import pytest
from router_fakes import FakeWorker, chat

from mesh.pb import common_pb2, inference_pb2, worker_pb2

pytestmark = pytest.mark.timeout(30)
STOP, TOOL_CALLS = common_pb2.FINISH_REASON_STOP, common_pb2.FINISH_REASON_TOOL_CALLS


class ChoicesWorker(FakeWorker):
    """Answers n choices, interleaved: choice 1 a tool call, the others text with logprobs."""

    async def Generate(self, request, context):
        self.calls.append(request)
        n = max(1, request.sampling.n)
        lp = [common_pb2.TokenLogprob(token="a", logprob=-0.5, bytes=b"a")]
        for i in range(n):
            if i == 1:
                yield worker_pb2.GenerateResponse(
                    index=i,
                    num_tokens=2,
                    tool_calls=[common_pb2.ToolCallDelta(index=0, id="call_1", name="f")],
                )
                yield worker_pb2.GenerateResponse(
                    index=i,
                    num_tokens=2,
                    tool_calls=[common_pb2.ToolCallDelta(index=0, arguments="{}")],
                )
            else:
                yield worker_pb2.GenerateResponse(index=i, text="a", num_tokens=1, logprobs=lp)
        for i in range(n):
            last = i == n - 1
            usage = common_pb2.Usage(prompt_tokens=10, completion_tokens=1 + 4 * (n > 1))
            yield worker_pb2.GenerateResponse(
                index=i,
                finish_reason=TOOL_CALLS if i == 1 else STOP,
                usage=usage if last else None,
            )


async def test_n_choices_are_relayed_to_the_end_and_billed_once(make_mesh):
    mesh = await make_mesh([ChoicesWorker("w1", ("chat:1m",))])
    req = chat()
    req.sampling.n, req.sampling.max_tokens, req.sampling.logprobs = 3, 7, True
    req.options.tools.add(name="f", parameters='{"type": "object"}')
    req.options.tool_choice.mode = common_pb2.TOOL_CHOICE_REQUIRED
    chunks = [c async for c in mesh.stub.ChatCompletion(req, metadata=mesh.md())]
    sent = mesh.workers[0].calls[0]
    assert sent.chat.options == req.options and sent.sampling.n == 3
    finishes = [(c.index, c.finish_reason) for c in chunks if c.finish_reason]
    assert finishes == [(0, STOP), (1, TOOL_CALLS), (2, STOP)]
    assert [c.HasField("usage") for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].usage.completion_tokens == 5 and chunks[-1].cost.cost_eur
    calls = [d for c in chunks for d in c.tool_calls]
    assert (calls[0].id, calls[0].name, calls[1].arguments) == ("call_1", "f", "{}")
    assert [c.logprobs[0].logprob for c in chunks if c.logprobs] == [-0.5, -0.5]
    record = mesh.access.records[-1]
    assert (record.outcome, record.input_tokens, record.output_tokens) == ("ok", 10, 5)


async def test_completion_echo_reaches_the_worker(make_mesh):
    mesh = await make_mesh([ChoicesWorker("w1", ("chat:1m",))])
    req = inference_pb2.CompletionRequest(model="chat:1m", prompt="Once", echo=True)
    chunks = [c async for c in mesh.stub.Completion(req, metadata=mesh.md())]
    assert mesh.workers[0].calls[0].echo and chunks[-1].finish_reason == STOP
