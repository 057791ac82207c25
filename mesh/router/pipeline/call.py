"""One request moving through the pipeline (`Call`), and how it begins.

`begin` reads the request id and clips an over-long model id at once, so records, logs and
messages only ever see the clipped form; `check_model_id` refuses it (the first step).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from mesh import metrics
from mesh.catalog import CatalogEntry
from mesh.errors import InvalidRequest
from mesh.router.access import Admission, Principal, RequestRecord
from mesh.router.accounting import TokenCounts
from mesh.router.ratelimit import Hold
from mesh.wire import MAX_MODEL_ID_CHARS

# Model ids are short (`family:size`); a longer one is refused before anything else, and
# never copied whole into records, logs or metadata: RECORDED_CHARS of it are kept.
RECORDED_CHARS = 64


@dataclass(slots=True)
class Call:
    """One request moving through the pipeline; becomes a RequestRecord at the end."""

    action: str
    model: str
    request_id: str
    started: float = field(default_factory=time.monotonic)
    created: int = field(default_factory=lambda: int(time.time()))
    principal: Principal | None = None
    admission: Admission | None = None
    entry: CatalogEntry | None = None
    # The name workers serve `model` under (their --served-model-name): the catalog's
    # `weights` mapping for a catalog id, else the id itself. One name per concept:
    # `model` is what the client asked for, `served_name` what the workers are asked for.
    served_name: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    outcome: str = "error"
    status: int = 500
    reason: str = ""
    filter_verdict: str = ""
    tokens: TokenCounts = field(default_factory=TokenCounts)
    system_tokens: int = 0
    num_streamed: int = 0
    # Prompt tokens are only counted by the worker at the end; a cancelled request bills this.
    prompt_estimate: int = 0
    # A worker took the request (its prompt is being computed): billed even if cancelled.
    dispatched: bool = False
    # Prompt and system tokens a worker reported before its final message (0: not said).
    reported_prompt: int = 0
    reported_system: int = 0
    # The client's model string was over MAX_MODEL_ID_CHARS: its length (`model` is clipped).
    model_chars: int = 0
    hold: Hold | None = None  # the estimated cost held against the budget while in flight
    cost: Decimal = Decimal(0)
    energy: Decimal = Decimal(0)
    perf_start: float = field(default_factory=time.perf_counter)
    clock: metrics.RequestClock | None = None  # once the model is known to be real
    finish_reasons: list[str] = field(default_factory=list)
    settled: bool = False  # the worker's final usage arrived
    recorded: bool = False  # usage and audit written (exactly once)
    # Content logging (tenant opted in): the prompt and the answer's pieces, sealed at the end.
    prompt_text: str = ""
    answer_parts: list[str] | None = None

    def to_record(self) -> RequestRecord:
        p = self.principal
        return RequestRecord(
            request_id=self.request_id,
            action=self.action,
            model=self.model,
            outcome=self.outcome,
            status=self.status,
            principal=p,
            key_id=p.key_id if p else "",
            reason=self.reason,
            input_tokens=self.tokens.prompt,
            output_tokens=self.tokens.completion,
            reasoning_tokens=self.tokens.reasoning,
            system_tokens=self.system_tokens,
            cost_eur=self.cost,
            energy_kwh=self.energy,
            latency_ms=(time.monotonic() - self.started) * 1000,
            filter_verdict=self.filter_verdict,
        )


def begin(context, action: str, model: str) -> Call:
    """A new Call: the client's x-request-id when sane (else a fresh one), the model clipped."""
    request_id = metadata(context).get("x-request-id", "")
    if not (0 < len(request_id) <= 128 and request_id.isprintable()):
        request_id = uuid.uuid4().hex
    if len(model) <= MAX_MODEL_ID_CHARS:
        return Call(action=action, model=model, request_id=request_id)
    # Clipped at once: the record, the logs and every message see only this much of it.
    return Call(action=action, model=clip(model), request_id=request_id, model_chars=len(model))


def check_model_id(call: Call) -> None:
    """400 invalid_model for a model id over MAX_MODEL_ID_CHARS (before authentication)."""
    if call.model_chars:
        raise InvalidRequest(
            f"The model id is {call.model_chars} characters long; model ids are at most "
            f"{MAX_MODEL_ID_CHARS}. List the available models with GET /v1/models.",
            code="invalid_model",
            param="model",
        )


def clip(text: str, limit: int = RECORDED_CHARS) -> str:
    """The start of an over-long client string, with how long it was."""
    return f"{text[:limit]}… ({len(text)} chars)"


def metadata(context) -> dict[str, str]:
    """The call's invocation metadata, keys lower-cased (binary values dropped)."""
    return {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def timeout(context, limit: float) -> float:
    """Seconds left for work on this call: the client's deadline, capped at `limit`."""
    remaining = context.time_remaining()
    return limit if remaining is None else max(0.001, min(remaining, limit))


def initial_metadata(call: Call) -> tuple[tuple[str, str], ...]:
    """What the client gets before the first chunk: the request id and the headers so far."""
    return (("x-request-id", call.request_id), *call.headers.items())
