"""Step 4: the security filter judges the prompt; it fails closed (unreachable: 503)."""

from __future__ import annotations

import logging

import grpc

from mesh import tracing
from mesh.errors import PromptRejected, Unavailable
from mesh.pb import filter_pb2, filter_pb2_grpc, worker_pb2
from mesh.router.config import RouterConfig
from mesh.router.pipeline.call import Call

log = logging.getLogger(__name__)
INSTRUCTION_ROLES = ("system", "developer")


def describe(verdict: filter_pb2.Verdict) -> str:
    """The verdict as recorded in the audit: the rules that fired, else allowed/blocked."""
    if not verdict.reasons:
        return "allowed" if verdict.allowed else f"blocked (score {verdict.score:.2f})"
    return ", ".join(f"{r.layer}/{r.rule}" for r in verdict.reasons)


def check_request(prompt: str, gen: worker_pb2.GenerateRequest | None) -> filter_pb2.CheckRequest:
    """What the filter screens. A chat's messages are the prompt (the calls an assistant turn
    made as `name(arguments)` text), joined by newlines, with its system and developer
    messages marked as `instructions` (the learned layer reads them apart); `tool` messages
    go to `tool_results`: untrusted content, screened for injections but not as structure
    (their JSON keys are expected); the offered tools go to `tool_definitions` as
    `name: description` and their parameters schema. Other requests: `prompt` as given."""
    if gen is None or gen.WhichOneof("input") != "chat":
        return filter_pb2.CheckRequest(prompt=prompt)
    parts, results, instructions, at = [], [], [], 0
    for m in gen.chat.messages:
        if m.role == "tool":
            results.append(m.content)
            continue
        calls = [f"{c.name}({c.arguments})" for c in m.tool_calls]
        part = "\n".join([m.content, *calls]) if calls else m.content
        at += 1 if parts else 0  # the newline that joins it to the previous part
        if m.role in INSTRUCTION_ROLES:
            instructions.append(filter_pb2.TextSpan(start=at, end=at + len(part)))
        parts.append(part)
        at += len(part)
    definitions = [
        f"{t.name}: {t.description}\n{t.parameters}"
        if t.parameters
        else f"{t.name}: {t.description}"
        for t in gen.chat.options.tools
    ]
    return filter_pb2.CheckRequest(
        prompt="\n".join(parts),
        tool_definitions=definitions,
        tool_results=results,
        instructions=instructions,
    )


class Screen:
    """Sets call.filter_verdict; raises PromptRejected (400) or Unavailable (503)."""

    def __init__(self, filter_stub: filter_pb2_grpc.SecurityFilterStub, config: RouterConfig):
        self._filter, self._config = filter_stub, config

    async def __call__(
        self, call: Call, prompt: str, user: str, gen: worker_pb2.GenerateRequest | None = None
    ) -> None:
        """`gen`: the request as the worker gets it; a chat's tool definitions and tool
        results then reach the filter as typed fields (see check_request)."""
        tenant = call.principal.tenant
        if not (call.principal.filter_enabled and self._config.filter_enabled_for(tenant)):
            call.filter_verdict = "disabled"
            return
        check = check_request(prompt, gen)
        check.request_id, check.tenant, check.user = call.request_id, tenant, user
        try:
            verdict = await self._filter.Check(
                check, timeout=self._config.filter_timeout_s, metadata=tracing.inject_metadata()
            )
        except grpc.aio.AioRpcError as err:
            log.error("security filter unreachable (%s): failing closed", err.code().name)
            raise Unavailable(
                "The security filter is unavailable, so the request was refused (security filter "
                "unavailable: prompts are never sent unchecked). Retry in a few seconds.",
                code="filter_unavailable",
                retry_after=2,
            ) from None
        call.filter_verdict = describe(verdict)
        if not verdict.allowed:
            raise PromptRejected(
                f"The prompt was rejected by the security filter ({call.filter_verdict}). "
                "Remove the flagged content and try again."
            )
